package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	streamsign "github.com/cablehub/cablehub/server/streams"
)

// subscription is how a client subscribes to one stream.
type subscription struct {
	command []byte // the subscribe command
	confirm string // the confirmation's exact text
}

func newSubscription(stream, secret string) subscription {
	id := map[string]string{"channel": "$pubsub", "stream_name": stream}
	if secret != "" {
		id = map[string]string{"channel": "$pubsub", "signed_stream_name": streamsign.Sign(stream, secret)}
	}
	ident, _ := json.Marshal(id)
	cmd, _ := json.Marshal(map[string]string{"command": "subscribe", "identifier": string(ident)})
	return subscription{command: cmd, confirm: `{"type":"confirm_subscription","identifier":` + strconv.Quote(string(ident)) + `}`}
}

// connect opens one client and waits for its welcome and its subscription's
// confirmation.
func connect(ctx context.Context, target, subprotocol string, sub subscription) (*benchConn, error) {
	c, err := dial(ctx, target, subprotocol)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	if err := c.readUntil(deadline, expect(`{"type":"welcome"`)); err != nil {
		c.nc.Close()
		return nil, err
	}
	if err := c.send(sub.command); err != nil {
		c.nc.Close()
		return nil, err
	}
	if err := c.readUntil(deadline, expect(sub.confirm)); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

// expect matches a message starting with prefix, and fails on a refusal.
func expect(prefix string) func([]byte) (bool, error) {
	return func(data []byte) (bool, error) {
		if bytes.HasPrefix(data, []byte(prefix)) {
			return true, nil
		}
		if bytes.HasPrefix(data, []byte(`{"type":"disconnect"`)) || bytes.HasPrefix(data, []byte(`{"type":"reject`)) {
			return false, fmt.Errorf("server answered %s", data)
		}
		return false, nil
	}
}
