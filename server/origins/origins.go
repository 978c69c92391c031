// Package origins matches an Origin header against a list of allowed hosts,
// as AnyCable's allowed_origins and API cors_hosts do.
package origins

import (
	"net/url"
	"strings"
)

// Match reports whether the host of an Origin header value is in hosts:
// equal to an entry, or ending with the part after a leading "*" of one
// ("*.example.com" matches "a.example.com"). Comparison ignores case; an
// origin without a host never matches.
func Match(origin string, hosts []string) bool {
	u, err := url.Parse(strings.ToLower(origin))
	if err != nil || u.Host == "" {
		return false
	}
	host := u.Host
	for _, h := range hosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			if strings.HasSuffix(host, suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}
