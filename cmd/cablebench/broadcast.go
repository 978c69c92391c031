package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// newBroadcastPublisher returns a publisher that sends each request the
// way an application publishes through one of AnyCable's broadcast
// adapters (as the anycable gem does), so the server's adapters can be
// measured: spec is adapter=URL, one of
//
//	http=http://127.0.0.1:8080/_broadcast   POST, Authorization: Bearer <token> when set
//	redis=redis://127.0.0.1:6379/0          PUBLISH <channel> <payload>
//	redisx=redis://127.0.0.1:6379/0         XADD <channel> * payload <payload>
//	nats=nats://127.0.0.1:4222              publish on subject <channel>
//
// A request of several items is one batch payload (a JSON array).
func newBroadcastPublisher(spec, channel, token string, conns int) (publisher, error) {
	kind, target, ok := strings.Cut(spec, "=")
	if !ok {
		return nil, fmt.Errorf("%q: want adapter=URL, e.g. redisx=redis://127.0.0.1:6379/0", spec)
	}
	if err := checkLoopback(target); err != nil {
		return nil, err
	}
	switch kind {
	case "http":
		p := newRESTPublisher("", token, conns)
		p.url = target
		return p, nil
	case "redis", "redisx":
		opts, err := redis.ParseURL(target)
		if err != nil {
			return nil, err
		}
		opts.PoolSize = max(conns, 10)
		return &redisBroadcaster{client: redis.NewClient(opts), key: channel, stream: kind == "redisx"}, nil
	case "nats":
		nc, err := nats.Connect(target)
		if err != nil {
			return nil, err
		}
		return &natsBroadcaster{conn: nc, subject: channel}, nil
	}
	return nil, fmt.Errorf("unknown adapter %q: use http, redis, redisx or nats", kind)
}

// redisBroadcaster publishes through the redis adapter (PUBLISH) or the
// redisx adapter (XADD, field payload).
type redisBroadcaster struct {
	client *redis.Client
	key    string
	stream bool
}

func (p *redisBroadcaster) publish(ctx context.Context, items []item) error {
	body := encodeItems(items)
	if p.stream {
		return p.client.XAdd(ctx, &redis.XAddArgs{Stream: p.key, Values: []any{"payload", body}}).Err()
	}
	return p.client.Publish(ctx, p.key, body).Err()
}

// natsBroadcaster publishes through the nats adapter. Core NATS publishing
// is buffered and unacknowledged, as the gem's: what the server cannot
// keep up with is lost, and the run reports it.
type natsBroadcaster struct {
	conn    *nats.Conn
	subject string
}

func (p *natsBroadcaster) publish(_ context.Context, items []item) error {
	return p.conn.Publish(p.subject, encodeItems(items))
}
