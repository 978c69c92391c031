// Package pusher speaks the Pusher Channels protocol, so that pusher-js,
// Laravel Echo and the Pusher server SDKs work with Cablehub. This file
// holds the app's credentials and the three signatures Pusher defines:
// a channel authorization (private and presence channels), a user
// sign-in, and an HTTP API request.
package pusher

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// App is one Pusher app: its id (in API paths, /apps/<id>/...), its key
// (in WebSocket paths, /app/<key>, and before every authorization) and
// its secret, which signs authorizations and API requests. An App with an
// empty secret verifies nothing: every signature check fails.
type App struct {
	ID, Key, Secret string
}

// ChannelAuth is the authorization a client presents to subscribe socket
// socketID to a private or presence channel: "<key>:<hex HMAC-SHA256 of
// "<socket_id>:<channel>" keyed with the secret>", with ":<channel_data>"
// appended to the signed string for a presence channel (channelData as
// the client sends it, "" for none).
func (a *App) ChannelAuth(socketID, channel, channelData string) string {
	s := socketID + ":" + channel
	if channelData != "" {
		s += ":" + channelData
	}
	return a.Key + ":" + a.sign(s)
}

// UserAuth is the authorization of a pusher:signin: the signed string is
// "<socket_id>::user::<user_data>".
func (a *App) UserAuth(socketID, userData string) string {
	return a.Key + ":" + a.sign(socketID+"::user::"+userData)
}

// VerifyChannel reports whether auth authorizes socketID on channel (with
// channelData for a presence channel), comparing in constant time.
func (a *App) VerifyChannel(socketID, channel, channelData, auth string) bool {
	return a.Secret != "" && hmac.Equal([]byte(auth), []byte(a.ChannelAuth(socketID, channel, channelData)))
}

// VerifyUser reports whether auth signs userData for socketID.
func (a *App) VerifyUser(socketID, userData, auth string) bool {
	return a.Secret != "" && hmac.Equal([]byte(auth), []byte(a.UserAuth(socketID, userData)))
}

func (a *App) sign(s string) string {
	m := hmac.New(sha256.New, []byte(a.Secret))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// MaxClockSkew is how far auth_timestamp may be from the server's clock.
const MaxClockSkew = 600 * time.Second

// RequestError is a refused HTTP API request: the status and the message
// Pusher answers with.
type RequestError struct {
	Status  int
	Message string
}

func (e *RequestError) Error() string { return e.Message }

// VerifyRequest checks an HTTP API request's signature as Pusher does:
// auth_key must be the app's key, auth_timestamp within MaxClockSkew of
// now, auth_version 1.0, body_md5 the hex MD5 of a POST's body (when the
// body is not empty), and auth_signature the hex HMAC-SHA256, keyed with
// the secret, of "<METHOD>\n<path>\n<query>", where query is every
// parameter but auth_signature, keys lower-cased, sorted by key, joined
// as "k=v" with "&" and not escaped. path is the request's path as sent
// (not decoded). It returns nil when the request verifies.
func (a *App) VerifyRequest(method, path string, query url.Values, body []byte, now time.Time) *RequestError {
	unauthorized := func(format string, args ...any) *RequestError {
		return &RequestError{Status: 401, Message: fmt.Sprintf(format, args...)}
	}
	if a.Secret == "" {
		return unauthorized("Authentication is not configured on this server")
	}
	if query.Get("auth_key") != a.Key {
		return unauthorized("Unknown auth_key")
	}
	ts, err := strconv.ParseInt(query.Get("auth_timestamp"), 10, 64)
	if err != nil {
		return unauthorized("auth_timestamp must be an integer (unix seconds)")
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > MaxClockSkew || skew < -MaxClockSkew {
		return unauthorized("Timestamp expired: Given timestamp (%d) not within %.0fs of server time (%d)", ts, MaxClockSkew.Seconds(), now.Unix())
	}
	if v := query.Get("auth_version"); v != "1.0" {
		return unauthorized("Unsupported auth_version %q: only 1.0 is supported", v)
	}
	if method == "POST" && len(body) > 0 {
		sum := md5.Sum(body)
		if !hmac.Equal([]byte(query.Get("body_md5")), []byte(hex.EncodeToString(sum[:]))) {
			return unauthorized("body_md5 does not match the body")
		}
	}
	want := a.sign(StringToSign(method, path, query))
	if !hmac.Equal([]byte(query.Get("auth_signature")), []byte(want)) {
		return unauthorized("Invalid signature: you should have sent HmacSHA256Hex(%q, your_secret_key), but you sent %q", StringToSign(method, path, query), query.Get("auth_signature"))
	}
	return nil
}

// StringToSign is what an HTTP API request's signature signs (see
// VerifyRequest). A parameter given several times takes its first value,
// as the SDKs never repeat one.
func StringToSign(method, path string, query url.Values) string {
	keys := make([]string, 0, len(query))
	values := make(map[string]string, len(query))
	for k, v := range query {
		lk := strings.ToLower(k)
		if lk == "auth_signature" || len(v) == 0 {
			continue
		}
		if _, dup := values[lk]; dup {
			continue // the same key in two cases: not something an SDK sends
		}
		keys = append(keys, lk)
		values[lk] = v[0]
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(values[k])
	}
	return b.String()
}
