package pusher

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// FuzzAPIEvents holds the body decoders of /events and /batch_events to
// their promise on any body: they never panic; what they accept keeps
// Pusher's limits; its publications carry {"event":<name>,"data":<the data
// as sent>} to valid channels; and an accepted event, encoded again,
// decodes to the same event. A refusal is a 400 or a 413 with a message.
func FuzzAPIEvents(f *testing.F) {
	f.Add([]byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`))
	f.Add([]byte(`{"name":"e","channel":"presence-a","data":{"a":[1,2]},"socket_id":"1.2","info":"user_count,subscription_count"}`))
	f.Add([]byte(`{"name":"e","channels":["a","a","#server-to-user-u1"],"data":"<&>\u2028"}`))
	f.Add([]byte(`{"batch":[{"name":"e","channel":"c","data":"x"},{"name":"f","channel":"d","data":1,"info":"subscription_count"}]}`))
	f.Add([]byte("{\"name\":\"e\\xff\",\"channel\":\"c\",\"data\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, rerr := decodeEvent(body)
		if checkRefusal(t, rerr) {
			checkEvent(t, ev, false)
		}
		evs, rerr := decodeBatch(body)
		if checkRefusal(t, rerr) {
			if len(evs) == 0 || len(evs) > maxBatchEvents {
				t.Fatalf("a batch of %d events", len(evs))
			}
			for _, ev := range evs {
				checkEvent(t, ev, true)
			}
		}
	})
}

// checkRefusal reports whether rerr is nil, failing t when it is not a
// 400 or 413 with a message.
func checkRefusal(t *testing.T, rerr *RequestError) bool {
	if rerr == nil {
		return true
	}
	if (rerr.Status != http.StatusBadRequest && rerr.Status != http.StatusRequestEntityTooLarge) || rerr.Message == "" {
		t.Fatalf("refused with %d %q", rerr.Status, rerr.Message)
	}
	return false
}

// checkEvent checks an accepted event's limits, its publications and that
// it survives being encoded again.
func checkEvent(t *testing.T, ev event, batch bool) {
	if ev.name == "" || len(ev.name) > maxEventName || len(ev.channels) == 0 || len(ev.channels) > maxEventChannels || (batch && len(ev.channels) != 1) {
		t.Fatalf("accepted %+v", ev)
	}
	if ev.socketID != "" && !validSocketID(ev.socketID) {
		t.Fatalf("accepted socket_id %q", ev.socketID)
	}
	pubs := ev.publications(nil)
	if len(pubs) != len(ev.channels) {
		t.Fatalf("%d publications for %d channels", len(pubs), len(ev.channels))
	}
	for i, p := range pubs {
		if p.Stream != ev.channels[i] || !validChannel(p.Stream) || p.ExcludeSocket != ev.socketID {
			t.Fatalf("publication %+v of %+v", p, ev)
		}
		var got struct {
			Event string          `json:"event"`
			Data  json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(p.Data), &got); err != nil {
			t.Fatalf("publication data %q: %v", p.Data, err)
		}
		var want, have bytes.Buffer
		if got.Event != ev.name || json.Compact(&want, ev.data) != nil || json.Compact(&have, got.Data) != nil || want.String() != have.String() {
			t.Fatalf("publication data %q of event %q with data %q", p.Data, ev.name, ev.data)
		}
	}
	again := eventRequest{Name: ev.name, Data: ev.data, Channels: ev.channels, Info: infoString(ev.info)}
	if ev.socketID != "" {
		again.SocketID = &ev.socketID
	}
	body, err := json.Marshal(again)
	if err != nil {
		t.Fatalf("encoding %+v: %v", again, err)
	}
	ev2, rerr := decodeEvent(body)
	if rerr != nil || ev2.name != ev.name || !reflect.DeepEqual(ev2.channels, ev.channels) || ev2.socketID != ev.socketID || ev2.info != ev.info {
		t.Fatalf("%s decodes to %+v, %v; want %+v", body, ev2, rerr, ev)
	}
}

func infoString(s infoSet) string {
	switch {
	case s.userCount && s.subscriptionCount:
		return "user_count,subscription_count"
	case s.userCount:
		return "user_count"
	case s.subscriptionCount:
		return "subscription_count"
	}
	return ""
}
