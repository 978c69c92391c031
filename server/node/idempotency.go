package node

import (
	"context"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
)

// heldClaim is a claim the node made for the publication at index (in the
// publications left after dropping duplicates).
type heldClaim struct {
	claim broker.IdempotencyClaim
	index int
}

// claimIdempotencyKeys claims the keys of the publications that have one
// and returns the publications without the duplicates (in order), with the
// claims made. The publications are returned unchanged, with no claims,
// when idempotency is off or no publication has a key. An error means the
// store could not be asked; then nothing is claimed.
func (n *Node) claimIdempotencyKeys(ctx context.Context, pubs []protocol.Publication) ([]protocol.Publication, []heldClaim, error) {
	if n.opts.IdempotencyWindow <= 0 || n.idempotency == nil {
		return pubs, nil, nil
	}
	var claims []broker.IdempotencyClaim
	for _, p := range pubs {
		if p.IdempotencyKey != "" {
			claims = append(claims, broker.IdempotencyClaim{Stream: p.Stream, Key: p.IdempotencyKey})
		}
	}
	if len(claims) == 0 {
		return pubs, nil, nil
	}
	claimed, err := n.idempotency.ClaimIdempotencyKeys(ctx, claims, n.opts.IdempotencyWindow)
	if err != nil {
		return nil, nil, err
	}
	kept := make([]protocol.Publication, 0, len(pubs))
	held := make([]heldClaim, 0, len(claims))
	j := 0
	for _, p := range pubs {
		if p.IdempotencyKey != "" {
			c, ok := claims[j], claimed[j]
			j++
			if !ok {
				n.log.Debug("duplicate publication skipped", "stream", p.Stream, "idempotency_key", p.IdempotencyKey)
				continue
			}
			held = append(held, heldClaim{claim: c, index: len(kept)})
		}
		kept = append(kept, p)
	}
	return kept, held, nil
}

// releaseIdempotencyKeys releases the claims of the publications from index
// taken on, after a broadcast failed there: their retry must be delivered.
// It runs even when the call's context is done (its likely failure), bounded
// by brokerTimeout. A release that fails leaves those keys claimed until
// their window ends, so a retry before then is dropped; that is logged.
func (n *Node) releaseIdempotencyKeys(ctx context.Context, held []heldClaim, taken int) {
	var release []broker.IdempotencyClaim
	for _, h := range held {
		if h.index >= taken {
			release = append(release, h.claim)
		}
	}
	if len(release) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerTimeout)
	defer cancel()
	if err := n.idempotency.ReleaseIdempotencyKeys(ctx, release); err != nil {
		n.log.Warn("idempotency keys of a failed publish not released: retries within the window are dropped", "keys", len(release), "error", err)
	}
}
