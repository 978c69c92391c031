package main

// The Pusher Channels client (--pusher): a WebSocket at /app/<key> that
// waits for pusher:connection_established, subscribes with
// pusher:subscribe (signed with the app's secret for private- and
// presence- channels) and is subscribed at
// pusher_internal:subscription_succeeded for its channel. Publications
// arrive as {"event":E,"data":D,"channel":C}; the tool's {"n":..,"t":..}
// is D itself (published through a server's API as
// {"event":"bench","data":{"n":..,"t":..}}) or, published through the
// Pusher HTTP API, D is that object as a JSON string (see parseMessage).
// Cablehub and AnyCable (--pusher_app_id/--pusher_app_key/--pusher_secret)
// both speak it; AnyCable's connection_established carries its data as an
// object rather than a string, which is accepted too.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// pusherOptions are the Pusher app the clients connect to (--pusher_*).
type pusherOptions struct {
	key, secret, appID string
	channelType        string // public, private or presence
	api                string // the Pusher HTTP API's base URL, for --publish pusher
	stats              *pusherStats
}

// pusherFlags defines the --pusher_* flags, whose values the result holds
// once the flags are parsed.
func pusherFlags() *pusherOptions {
	o := &pusherOptions{stats: &pusherStats{}}
	flag.StringVar(&o.key, "pusher_key", "key-1", "with --pusher: the app key (the server's --pusher_app_key)")
	flag.StringVar(&o.secret, "pusher_secret", "psecret", "with --pusher: the app secret, signing private and presence subscriptions and Pusher HTTP API requests")
	flag.StringVar(&o.appID, "pusher_app_id", "app-1", "with --pusher: the app id, in the Pusher HTTP API's paths (/apps/<id>/events)")
	flag.StringVar(&o.channelType, "pusher_channel_type", "public", "with --pusher: public, private or presence channels (client i presence member user_id \"<i>\", user_info {\"n\":<i>})")
	flag.StringVar(&o.api, "pusher_api", "", "with --publish pusher: the Pusher HTTP API's base URL, POST <base>/apps/<id>/events (default: http:// and the host of the first --url)")
	return o
}

// pusherSetup checks the Pusher settings and makes o's URLs Pusher
// WebSocket URLs (see pusherURL); urlSet and apiSet tell whether --url
// and --pusher_api were given.
func (o *benchOptions) pusherSetup(urlSet, apiSet bool) error {
	p := o.pusher
	switch p.channelType {
	case "public", "private", "presence":
	default:
		return errors.New("--pusher_channel_type must be public, private or presence")
	}
	if !urlSet {
		o.urls = []string{"ws://127.0.0.1:8080"}
	}
	for i, raw := range o.urls {
		u, err := pusherURL(raw, p.key)
		if err != nil {
			return fmt.Errorf("--url: %v", err)
		}
		o.urls[i] = u
	}
	if !apiSet {
		u, _ := url.Parse(o.urls[0])
		p.api = "http://" + u.Host
	}
	return nil
}

// pusherEventName is the event the tool's publications are sent as.
const pusherEventName = "bench"

// pusherStats counts what the Pusher clients received besides
// publications and their subscription: the server's pings (answered),
// presence member events and pusher:error frames. All clients share it.
type pusherStats struct {
	pings        atomic.Int64
	memberEvents atomic.Int64
	errors       atomic.Int64
	firstError   atomic.Pointer[string] // the first pusher:error frame
}

// fill puts the counts in res (nothing when o is nil: not Pusher clients).
func (o *pusherOptions) fill(res *result) {
	if o == nil {
		return
	}
	res.PusherPings = o.stats.pings.Load()
	res.PusherMemberEvents = o.stats.memberEvents.Load()
	res.PusherErrors = o.stats.errors.Load()
}

// firstErrorNote is ", the server sent <the first pusher:error>", or "".
func (o *pusherOptions) firstErrorNote() string {
	if o == nil {
		return ""
	}
	if e := o.stats.firstError.Load(); e != nil {
		return "; the server sent " + *e
	}
	return ""
}

// channel is the Pusher channel of a stream name: the name itself for a
// public channel, with the private- or presence- prefix otherwise.
func (o *pusherOptions) channel(stream string) string {
	switch o.channelType {
	case "private", "presence":
		return o.channelType + "-" + stream
	}
	return stream
}

// pusherURL is the WebSocket URL a Pusher client dials for --url raw: a
// URL with no path (or "/") gets /app/<key>; any other path is taken as
// it is (ws://127.0.0.1:8080/app/key-1). Without a protocol query
// parameter, protocol=7 (and a client name and version, as pusher-js
// sends) are added.
func pusherURL(raw, key string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/app/" + key
	}
	if q := u.Query(); !q.Has("protocol") {
		q.Set("protocol", "7")
		q.Set("client", "cablebench")
		q.Set("version", "1.0")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// pusherChannelAuth is the auth of a private or presence subscription:
// "<key>:<hex HMAC-SHA256 of "<socket_id>:<channel>" keyed with the
// secret>", with ":<channel_data>" signed too when channelData is not
// empty (a presence channel).
func pusherChannelAuth(key, secret, socketID, channel, channelData string) string {
	s := socketID + ":" + channel
	if channelData != "" {
		s += ":" + channelData
	}
	return key + ":" + hmacHex(secret, s)
}

func hmacHex(secret, s string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// pusherChannelData is client i's presence member: user i, with info
// {"n":i}.
func pusherChannelData(i int) string {
	return `{"user_id":"` + strconv.Itoa(i) + `","user_info":{"n":` + strconv.Itoa(i) + `}}`
}

// subscribeCommand is client i's pusher:subscribe to channel on socket
// socketID, with its auth (and channel_data) when the channel needs them.
func (o *pusherOptions) subscribeCommand(socketID, channel string, i int) []byte {
	type subscribeData struct {
		Channel     string `json:"channel"`
		Auth        string `json:"auth,omitempty"`
		ChannelData string `json:"channel_data,omitempty"`
	}
	d := subscribeData{Channel: channel}
	switch {
	case strings.HasPrefix(channel, "presence-"):
		d.ChannelData = pusherChannelData(i)
		d.Auth = pusherChannelAuth(o.key, o.secret, socketID, channel, d.ChannelData)
	case strings.HasPrefix(channel, "private-"):
		d.Auth = pusherChannelAuth(o.key, o.secret, socketID, channel, "")
	}
	cmd, _ := json.Marshal(struct {
		Event string        `json:"event"`
		Data  subscribeData `json:"data"`
	}{"pusher:subscribe", d})
	return cmd
}

// pusherFrame is a Pusher message with its data left as JSON.
type pusherFrame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// dataText is a frame's data as Pusher means it: the content of a JSON
// string, or (as AnyCable sends some) the JSON value itself.
func (f *pusherFrame) dataText() ([]byte, error) {
	if len(f.Data) > 0 && f.Data[0] == '"' {
		var s string
		if err := json.Unmarshal(f.Data, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return f.Data, nil
}

// pusherEvent is a frame's event name, read without decoding the frame
// when it comes first (as both Cablehub and AnyCable write it), which is
// what the receive path needs per publication; "" when there is none.
func pusherEvent(p []byte) string {
	if rest, ok := bytes.CutPrefix(p, []byte(`{"event":"`)); ok {
		if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return string(rest[:j])
		}
	}
	var f struct {
		Event string `json:"event"`
	}
	json.Unmarshal(p, &f)
	return f.Event
}

var pusherPong = []byte(`{"event":"pusher:pong","data":{}}`)

// intercept handles, for a Pusher client's feed, the frames that are no
// reader's business: a pusher:ping is answered with a pusher:pong, a
// presence member event is counted; both are then handled. A pusher:error
// is counted (the first one kept) and passed on, as everything else is.
func (s *pusherStats) intercept(c *benchConn, p []byte) (handled bool, err error) {
	if len(p) < 10 || p[0] != '{' {
		return false, nil
	}
	switch ev := pusherEvent(p); ev {
	case "pusher:ping":
		s.pings.Add(1)
		return true, c.send(pusherPong)
	case "pusher_internal:member_added", "pusher_internal:member_removed":
		s.memberEvents.Add(1)
		return true, nil
	case "pusher:error":
		if s.errors.Add(1) == 1 {
			text := string(p)
			s.firstError.Store(&text)
		}
	}
	return false, nil
}

// connectPusher opens client i's connection to target and subscribes it to
// channel, within 10 s of the handshake or by ctx's deadline, whichever
// is sooner.
func connectPusher(ctx context.Context, target, channel string, i int, o *pusherOptions) (*benchConn, error) {
	c, err := dial(ctx, target, "", "")
	if err != nil {
		return nil, err
	}
	c.pusher = o.stats
	if err := c.pusherSubscribe(deadlineWithin(ctx, 10*time.Second), channel, i, o); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

// pusherSubscribe waits for the connection's socket_id, sends client i's
// subscription to channel, and waits for its subscription_succeeded, all
// by deadline. A pusher:error or a subscription error fails it, as a
// refusalError.
func (c *benchConn) pusherSubscribe(deadline time.Time, channel string, i int, o *pusherOptions) error {
	var socketID string
	subscribed := false
	var ferr error
	handle := func(p []byte) {
		switch {
		case subscribed || ferr != nil:
		case socketID == "":
			if socketID, ferr = establishedSocketID(p); socketID != "" {
				ferr = c.send(o.subscribeCommand(socketID, channel, i))
			}
		default:
			subscribed, ferr = subscriptionSucceeded(p, channel)
		}
	}
	return c.readFor(deadline, func(data []byte) (bool, error) {
		if err := c.feed(data, handle); err != nil {
			// A refusal is usually followed by the close in the same
			// read: report the refusal, which says why.
			if ferr != nil {
				return false, ferr
			}
			return false, err
		}
		return subscribed || ferr != nil, ferr
	})
}

// establishedSocketID is the socket_id of a pusher:connection_established
// frame ("" for another frame), failing on a pusher:error.
func establishedSocketID(p []byte) (string, error) {
	switch pusherEvent(p) {
	case "pusher:error":
		return "", &refusalError{"pusher:error", string(p)}
	case "pusher:connection_established":
	default:
		return "", nil
	}
	var f pusherFrame
	if err := json.Unmarshal(p, &f); err != nil {
		return "", fmt.Errorf("connection_established: %v", err)
	}
	text, err := f.dataText()
	if err != nil {
		return "", fmt.Errorf("connection_established: %v", err)
	}
	var d struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal(text, &d); err != nil || d.SocketID == "" {
		return "", fmt.Errorf("connection_established without a socket_id: %s", p)
	}
	return d.SocketID, nil
}

// subscriptionSucceeded reports whether p is the
// pusher_internal:subscription_succeeded of channel, failing on a
// subscription error or a pusher:error. A presence channel's frame holds
// the roster, as big as the channel's membership: when it ends with the
// channel (as both servers write it), it is matched without decoding.
func subscriptionSucceeded(p []byte, channel string) (bool, error) {
	switch ev := pusherEvent(p); ev {
	case "pusher_internal:subscription_succeeded":
	case "pusher:error", "pusher:subscription_error", "pusher_internal:subscription_error":
		return false, &refusalError{ev, string(p)}
	default:
		return false, nil
	}
	quoted, _ := json.Marshal(channel)
	if bytes.HasSuffix(p, append(append([]byte(`,"channel":`), quoted...), '}')) {
		return true, nil
	}
	var f pusherFrame
	if err := json.Unmarshal(p, &f); err != nil {
		return false, errors.New("subscription_succeeded: " + err.Error())
	}
	return f.Channel == channel, nil
}
