package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// pusherAPIPublisher publishes as a Pusher server SDK does (--publish
// pusher): a signed POST /apps/<id>/events of one event
// {"name":"bench","channel":<stream>,"data":<the payload as a string>},
// or, for a --batch of several, POST /apps/<id>/batch_events (Pusher
// takes at most 10 events a batch; AnyCable's Pusher API has no
// batch_events at all). Any 2xx answer is a success (Pusher and AnyCable
// answer 200 {}).
type pusherAPIPublisher struct {
	base               string // e.g. http://127.0.0.1:8080, no trailing slash
	appID, key, secret string
	client             *http.Client
	now                func() time.Time
}

func newPusherAPIPublisher(base string, o *pusherOptions, conns int) *pusherAPIPublisher {
	return &pusherAPIPublisher{
		base: strings.TrimSuffix(base, "/"), appID: o.appID, key: o.key, secret: o.secret,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}},
		now:    time.Now,
	}
}

// pusherAPIEvent is one event of a Pusher HTTP API request body.
type pusherAPIEvent struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	Data    string `json:"data"`
}

// request is the path and body of publishing items.
func (p *pusherAPIPublisher) request(items []item) (path string, body []byte) {
	events := make([]pusherAPIEvent, len(items))
	for i, it := range items {
		events[i] = pusherAPIEvent{Name: pusherEventName, Channel: it.stream, Data: it.data}
	}
	if len(events) == 1 {
		body, _ = json.Marshal(events[0])
		return "/apps/" + p.appID + "/events", body
	}
	body, _ = json.Marshal(struct {
		Batch []pusherAPIEvent `json:"batch"`
	}{events})
	return "/apps/" + p.appID + "/batch_events", body
}

func (p *pusherAPIPublisher) publish(ctx context.Context, items []item) error {
	path, body := p.request(items)
	query := pusherSignedQuery("POST", path, body, p.key, p.secret, p.now().Unix())
	req, err := http.NewRequestWithContext(ctx, "POST", p.base+path+"?"+query, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, resp.Body) // to the end, so the connection is reused
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the Pusher API: %s answered %d %s", path, resp.StatusCode, bytes.TrimSpace(answer))
	}
	return nil
}

// pusherSignedQuery is the query string of a Pusher HTTP API request
// signed as Pusher's REST API defines it: auth_key, auth_timestamp,
// auth_version=1.0 and body_md5 (hex MD5 of the body), then
// auth_signature, the hex HMAC-SHA256 keyed with the secret of
// "<METHOD>\n<path>\n<the others as k=v joined by &, sorted by name, not
// escaped>" (as the SDKs sign them; the query escapes the values).
func pusherSignedQuery(method, path string, body []byte, key, secret string, timestamp int64) string {
	sum := md5.Sum(body)
	params := [...][2]string{ // sorted by name
		{"auth_key", key},
		{"auth_timestamp", strconv.FormatInt(timestamp, 10)},
		{"auth_version", "1.0"},
		{"body_md5", hex.EncodeToString(sum[:])},
	}
	var signed, query []string
	for _, p := range params {
		signed = append(signed, p[0]+"="+p[1])
		query = append(query, p[0]+"="+url.QueryEscape(p[1]))
	}
	signature := hmacHex(secret, method+"\n"+path+"\n"+strings.Join(signed, "&"))
	return strings.Join(query, "&") + "&auth_signature=" + signature
}

// pusherEventPublisher wraps the publications of another publisher (the
// REST API, gRPC or a broadcast adapter) as Pusher events, which is what
// a server passes on to Pusher clients: {"event":"bench","data":<payload>}.
type pusherEventPublisher struct{ publisher }

func (p pusherEventPublisher) publish(ctx context.Context, items []item) error {
	wrapped := make([]item, len(items))
	for i, it := range items {
		wrapped[i] = item{stream: it.stream, data: `{"event":"` + pusherEventName + `","data":` + it.data + `}`}
	}
	return p.publisher.publish(ctx, wrapped)
}
