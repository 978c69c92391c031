package ds

import "strings"

// etag is the entity tag of a catch-up answer: the range it covers, from
// the offset asked for (canonical: "-1" for the start) to the next offset,
// with "~" when the answer was cut by a page limit (not up to date). The
// body of a range never changes while the epoch holds, so the tag is a
// strong one. Offsets hold no quote or space, so it needs no escaping.
func etag(from, next string, cut bool) string {
	var b strings.Builder
	b.Grow(len(from) + len(next) + 4)
	b.WriteByte('"')
	b.WriteString(from)
	b.WriteByte(':')
	b.WriteString(next)
	if cut {
		b.WriteByte('~')
	}
	b.WriteByte('"')
	return b.String()
}

// maxIfNoneMatch bounds the If-None-Match header looked at.
const maxIfNoneMatch = 8 << 10

// matchesETag reports whether an If-None-Match header value names tag (or
// is "*"), comparing weakly as RFC 9110 asks for If-None-Match.
func matchesETag(header, tag string) bool {
	if header == "" || len(header) > maxIfNoneMatch {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == tag {
			return true
		}
	}
	return false
}
