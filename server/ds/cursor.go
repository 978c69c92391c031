package ds

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// cursorOrigin and cursorInterval define the Stream-Cursor: the number of
// 20 s intervals since 2024-10-09T00:00:00Z, as the protocol's reference
// servers and AnyCable count it. Caches key live requests by it, so
// clients polling at the same time share answers.
var cursorOrigin = time.Date(2024, 10, 9, 0, 0, 0, 0, time.UTC)

const cursorInterval = 20 * time.Second

// maxJitter is the most a cursor is pushed ahead of a client's: the
// protocol asks for a random 1 to 3600 s.
const maxJitter = 3600 * time.Second

// nextCursor is the Stream-Cursor of an answer made at now to a request
// that sent cursor ("" for none). A client whose cursor is not behind the
// current interval (it would get the same cached answer again) gets one
// strictly greater, jittered at random by 1 to 3600 s worth of intervals
// so that clients do not move in lockstep.
func nextCursor(now time.Time, cursor string) string {
	cur := int64(now.Sub(cursorOrigin) / cursorInterval)
	if sent, err := strconv.ParseInt(cursor, 10, 64); err == nil && sent >= cur {
		steps := int64(maxJitter / cursorInterval)
		cur = sent + 1 + rand.Int64N(steps)
	}
	return strconv.FormatInt(cur, 10)
}
