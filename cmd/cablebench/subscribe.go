package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	streamsign "github.com/cablehub/cablehub/server/streams"
)

// subscription is how a client subscribes to one stream, and how it
// recognises the welcome and the confirmation; over Server-Sent Events
// (--sse) it names the subscription in the request's query instead.
type subscription struct {
	command          []byte // the subscribe command
	welcome, confirm func([]byte) (bool, error)
	query            string // the events request's query parameters, encoded
}

func newSubscription(stream, secret string) subscription {
	id := map[string]string{"channel": "$pubsub", "stream_name": stream}
	if secret != "" {
		id = map[string]string{"channel": "$pubsub", "signed_stream_name": streamsign.Sign(stream, secret)}
	}
	ident, _ := json.Marshal(id)
	cmd, _ := json.Marshal(map[string]string{"command": "subscribe", "identifier": string(ident)})
	query := url.Values{"stream": {stream}}
	if secret != "" {
		query = url.Values{"signed_stream": {id["signed_stream_name"]}}
	}
	return subscription{
		command: cmd,
		welcome: expect(`{"type":"welcome"`),
		confirm: expect(`{"type":"confirm_subscription","identifier":` + strconv.Quote(string(ident)) + `}`),
		query:   query.Encode(),
	}
}

// newRPCSubscription subscribes to an application channel served through
// the server's RPC back end, naming stream in the identifier (the bench
// back end, rpcbackend.go, streams from it, so publications reach the
// client as with $pubsub). The welcome and the confirmation are the
// application's frames, passed on verbatim in whatever key order it writes
// them (Rails puts "identifier" first), so they are matched by their parsed
// type and identifier rather than by their text.
func newRPCSubscription(channel, stream string) subscription {
	ident, _ := json.Marshal(map[string]string{"channel": channel, "stream": stream})
	cmd, _ := json.Marshal(map[string]string{"command": "subscribe", "identifier": string(ident)})
	return subscription{
		command: cmd,
		welcome: expectJSON("welcome", ""),
		confirm: expectJSON("confirm_subscription", string(ident)),
		query:   url.Values{"identifier": {string(ident)}}.Encode(),
	}
}

// identify makes client i known to an RPC application as user bench-<i>:
// via "query" as a user query parameter added to target, via "cookie" as a
// Cookie header line (what a Rails connection reads; AnyCable and Cablehub
// forward the cookie header to RPC by default). It returns the URL to dial
// and the extra request header lines.
func identify(target string, i int, via string) (string, string, error) {
	user := "bench-" + strconv.Itoa(i)
	if via == "cookie" {
		return target, "Cookie: user=" + user + "\r\n", nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("user", user)
	u.RawQuery = q.Encode()
	return u.String(), "", nil
}

// connect opens one client, sending the extra request header lines, and
// waits for its welcome and its subscription's confirmation, within 10 s
// of the handshake or by ctx's deadline, whichever is sooner.
func connect(ctx context.Context, target, header, subprotocol string, sub subscription, inflate *inflater) (*benchConn, error) {
	c, err := dial(ctx, target, header, subprotocol)
	if err != nil {
		return nil, err
	}
	if c.agreed {
		c.deflate = inflate
	}
	if err := c.subscribe(deadlineWithin(ctx, 10*time.Second), sub); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

// subscribe waits for the welcome on an open connection, sends the
// subscribe command and waits for its confirmation, all by deadline.
func (c *benchConn) subscribe(deadline time.Time, sub subscription) error {
	if err := c.readUntil(deadline, sub.welcome); err != nil {
		return err
	}
	if err := c.send(sub.command); err != nil {
		return err
	}
	return c.readUntil(deadline, sub.confirm)
}

// refusalError is a disconnect or reject_subscription message: the server
// refused the connection or the subscription.
type refusalError struct {
	typ   string // "disconnect" or "reject_subscription"
	frame string
}

func (e *refusalError) Error() string { return "server answered " + e.frame }

// expect matches a message starting with prefix, and fails on a refusal.
func expect(prefix string) func([]byte) (bool, error) {
	return func(data []byte) (bool, error) {
		if bytes.HasPrefix(data, []byte(prefix)) {
			return true, nil
		}
		if bytes.HasPrefix(data, []byte(`{"type":"disconnect"`)) {
			return false, &refusalError{"disconnect", string(data)}
		}
		if bytes.HasPrefix(data, []byte(`{"type":"reject`)) {
			return false, &refusalError{"reject_subscription", string(data)}
		}
		return false, nil
	}
}

// expectJSON matches a frame whose "type" is typ and, when identifier is
// not empty, whose "identifier" is identifier; it fails on a disconnect or
// a rejection.
func expectJSON(typ, identifier string) func([]byte) (bool, error) {
	return func(data []byte) (bool, error) {
		var f struct {
			Type       string `json:"type"`
			Identifier string `json:"identifier"`
		}
		if json.Unmarshal(data, &f) != nil {
			return false, nil
		}
		switch {
		case f.Type == typ && (identifier == "" || f.Identifier == identifier):
			return true, nil
		case f.Type == "disconnect" || f.Type == "reject_subscription":
			return false, &refusalError{f.Type, string(data)}
		}
		return false, nil
	}
}
