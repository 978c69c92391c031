package admin

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cablehub/cablehub/server/httpbody"
	"github.com/cablehub/cablehub/server/jsonerr"
)

// CookieName is the session cookie's name.
const CookieName = "cablehub_admin"

// Header marks a request as the console's own: the session cookie counts
// only on requests that carry it with the value "1" (see the package
// doc), and signing in and out need it too.
const Header = "X-Cablehub-Console"

// maxSignInBody bounds a sign-in request's body.
const maxSignInBody = 4 << 10

// signInMessage answers a request that needs a session and has none.
const signInMessage = "sign in to the admin console first"

// RequestSession returns the session token r carries for the API: its
// console cookie's value when r has the console header, else "" (the
// gateway's Options.ConsoleSession).
func RequestSession(r *http.Request) string {
	if r.Header.Get(Header) != "1" {
		return ""
	}
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

// session returns r's valid session token and its expiry.
func (c *Console) session(r *http.Request) (time.Time, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return time.Time{}, false
	}
	return c.sessions.Expiry(ck.Value)
}

// serveSession answers {path}/session: GET says whether the request is
// signed in, POST signs in, DELETE signs out.
func (c *Console) serveSession(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		expires, ok := c.session(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, codes.Unauthenticated, signInMessage)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{
			"node_id": c.opts.NodeID, "api_path": c.opts.APIPath, "expires_at": expires.UTC().Format(time.RFC3339),
		})
	case http.MethodPost:
		c.signIn(w, r)
	case http.MethodDelete:
		c.signOut(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, codes.Unimplemented, "method "+r.Method+" is not allowed here, use GET, POST or DELETE")
	}
}

// signIn checks a password and answers with a session cookie. Failures
// are counted per client address (limiter); the address is the
// connection's, as forwarded headers can be forged.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(Header) != "1" {
		writeError(w, http.StatusForbidden, codes.PermissionDenied, "sign in from the console page (the request lacks "+Header+": 1)")
		return
	}
	addr := clientAddr(r)
	if ok, wait := c.limiter.allow(addr); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		writeError(w, http.StatusTooManyRequests, codes.ResourceExhausted, fmt.Sprintf("too many sign-in attempts: try again in %d s", secs))
		c.opts.Log.Warn("admin console sign-in refused: too many attempts", "addr", addr)
		return
	}
	limit := httpbody.Limit{MaxSize: maxSignInBody, Timeout: 10 * time.Second}
	lift := limit.Deadline(w, r)
	body, ok := limit.Read(w, r)
	if !ok {
		return
	}
	lift()
	var in struct {
		Password *string `json:"password"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Password == nil {
		writeError(w, http.StatusBadRequest, codes.InvalidArgument, `the body must be a JSON object {"password":"…"}`)
		return
	}
	if !c.matches(*in.Password) {
		c.limiter.fail(addr)
		c.opts.Log.Warn("admin console sign-in refused: wrong password", "addr", addr)
		writeError(w, http.StatusUnauthorized, codes.Unauthenticated, "wrong password")
		return
	}
	token, expires := c.sessions.Issue()
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/", Expires: expires, MaxAge: int(c.sessions.TTL().Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	c.opts.Log.Info("admin console signed in", "addr", addr, "expires", expires.UTC().Format(time.RFC3339))
	w.WriteHeader(http.StatusNoContent)
}

// matches compares password with every credential in constant time, so
// the answer's timing says nothing about which or how much matched.
func (c *Console) matches(password string) bool {
	ok := 0
	for _, cred := range c.credentials {
		ok |= subtle.ConstantTimeCompare([]byte(password), cred)
	}
	return ok == 1
}

// signOut revokes the request's session and clears its cookie.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(Header) != "1" {
		writeError(w, http.StatusForbidden, codes.PermissionDenied, "sign out from the console page (the request lacks "+Header+": 1)")
		return
	}
	if ck, err := r.Cookie(CookieName); err == nil {
		c.sessions.Revoke(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	c.opts.Log.Info("admin console signed out", "addr", clientAddr(r))
	w.WriteHeader(http.StatusNoContent)
}

// clientAddr is the IP address r came from.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeError(w http.ResponseWriter, status int, code codes.Code, msg string) {
	jsonerr.Write(w, status, code, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
