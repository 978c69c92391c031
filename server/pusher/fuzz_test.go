package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cablehub/cablehub/server/protocol"
)

// FuzzDecode holds Decode to its mapping on any frame: it never panics,
// a subscribe or unsubscribe names data.channel, a subscribe carries the
// data as sent, and a whisper is {"event":..,"data":..} of a client-*
// event on its channel, with nothing of the client's beyond them.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:subscribe","data":{"channel":"presence-r","auth":"k:s","channel_data":"{\"user_id\":1}"}}`,
		`{"event":"pusher:unsubscribe","data":{"channel":"news"}}`,
		`{"event":"pusher:ping","data":{}}`,
		`{"event":"client-x","channel":"private-a","data":{"a":1},"user_id":"forged"}`,
		`{"EVENT":"pusher:subscribe","Data":{"Channel":"a","channel":"b"}}`,
		`{"event":"client-x","channel":"c","data":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		cmd, err := Codec{}.Decode(frame)
		if err != nil {
			if cmd != nil {
				t.Fatalf("a command with an error: %+v", cmd)
			}
			return
		}
		var e struct {
			Event   string          `json:"event"`
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(frame, &e); err != nil {
			t.Fatalf("decoded a frame that is not an event: %v", err)
		}
		switch cmd.Command {
		case "subscribe", "unsubscribe":
			var d struct {
				Channel string `json:"channel"`
			}
			if json.Unmarshal(e.Data, &d) != nil || cmd.Identifier != d.Channel || e.Event != "pusher:"+cmd.Command {
				t.Fatalf("%s of %q from %s", cmd.Command, cmd.Identifier, frame)
			}
			if cmd.Command == "subscribe" && !bytes.Equal(cmd.Data, e.Data) {
				t.Fatalf("subscribe data %s, sent %s", cmd.Data, e.Data)
			}
		case "whisper":
			var w map[string]json.RawMessage
			if json.Unmarshal(cmd.Data, &w) != nil || len(w) != 2 || w["data"] == nil ||
				cmd.Identifier != e.Channel || e.Channel == "" || !strings.HasPrefix(e.Event, clientPrefix) {
				t.Fatalf("whisper %s on %q from %s", cmd.Data, cmd.Identifier, frame)
			}
			var event string
			if json.Unmarshal(w["event"], &event) != nil || event != e.Event {
				t.Fatalf("whisper of event %s, sent %q", w["event"], e.Event)
			}
		case "ping", "pong":
			if e.Event != "pusher:"+cmd.Command {
				t.Fatalf("%s from %s", cmd.Command, frame)
			}
		default:
			t.Fatalf("command %q from %s", cmd.Command, frame)
		}
	})
}

// Modes of FuzzRoute: which signature the subscription carries instead of
// the fuzzed auth, and whether the data is the fuzzed raw bytes.
const (
	signPrivate  = 1
	signPresence = 2
	signUser     = 3
	rawData      = 4
)

// FuzzRoute holds the Router to its rules on any subscription: it never
// panics, and it opens a private, presence or user channel only with the
// very signature the app would give for it (computed here), a presence
// channel only with a member, a public one only by a valid name. Given
// the right signature, it refuses only a channel_data or user_data it
// cannot name a member by.
func FuzzRoute(f *testing.F) {
	f.Add(docSocket, docPrivateChannel, docPrivateAuth, "", "", uint8(0), []byte(nil))
	f.Add(docSocket, docPresenceChannel, docPresenceAuth, docPresenceData, "", uint8(0), []byte(nil))
	f.Add("1.2", "presence-r", "", `{"user_id":1.5}`, "", uint8(signPresence), []byte(nil))
	f.Add("1.2", "#server-to-user-u1", "", "", `{"id":"u1"}`, uint8(signUser), []byte(nil))
	f.Add("1.2", "private-a", "", "", "", uint8(rawData), []byte(`{"auth":"x","channel_data":1}`))
	f.Add("1.2", "news", "", "", "", uint8(0), []byte(nil))
	f.Fuzz(func(t *testing.T, sid, channel, auth, channelData, userData string, mode uint8, raw []byte) {
		switch mode & 3 {
		case signPrivate:
			auth = docApp.ChannelAuth(sid, channel, "")
		case signPresence:
			auth = docApp.ChannelAuth(sid, channel, channelData)
		case signUser:
			auth = docApp.UserAuth(sid, userData)
		}
		data, _ := json.Marshal(subscribeData{Channel: channel, Auth: auth, ChannelData: channelData, UserData: userData})
		if mode&rawData != 0 {
			data = raw
		}
		sub, err := (&Router{App: &docApp}).Route(sid, &protocol.Command{Command: "subscribe", Identifier: channel, Data: data})
		// What the router was given, read independently.
		var d subscribeData
		parsed := len(data) == 0 || json.Unmarshal(data, &d) == nil
		if err != nil {
			// JSON carries only valid UTF-8: each string must be, not
			// merely their concatenation ("\xdd" + "\xb0" is).
			exact := mode&rawData == 0 && utf8.ValidString(sid) && utf8.ValidString(channel) &&
				utf8.ValidString(channelData) && utf8.ValidString(userData)
			checkRouteRefusal(t, mode&3, channel, channelData, err, exact, parsed)
			return
		}
		if !parsed || sub.Stream != channel {
			t.Fatalf("routed %+v from data %s", sub, data)
		}
		checkRoute(t, sid, channel, &d, sub.Member != nil)
		if strings.HasPrefix(channel, presencePrefix) != sub.Presence || sub.Presence != (sub.Member != nil) {
			t.Fatalf("%q routed %+v", channel, sub)
		}
	})
}

// checkRoute fails unless channel, routed for sid with data d, holds the
// signature it needs.
func checkRoute(t *testing.T, sid, channel string, d *subscribeData, member bool) {
	t.Helper()
	switch {
	case strings.HasPrefix(channel, userPrefix):
		if d.Auth != docApp.UserAuth(sid, d.UserData) || !userStreamOf(channel, d.UserData) {
			t.Fatalf("%q routed with auth %q, user_data %q", channel, d.Auth, d.UserData)
		}
	case !ValidChannel(channel):
		t.Fatalf("invalid name %q routed", channel)
	case strings.HasPrefix(channel, presencePrefix):
		if d.ChannelData == "" || d.Auth != docApp.ChannelAuth(sid, channel, d.ChannelData) || !member {
			t.Fatalf("%q routed with auth %q, channel_data %q", channel, d.Auth, d.ChannelData)
		}
	case strings.HasPrefix(channel, privatePrefix):
		if d.Auth != docApp.ChannelAuth(sid, channel, "") {
			t.Fatalf("%q routed with auth %q", channel, d.Auth)
		}
	}
}

// checkRouteRefusal fails when a subscription was refused that should not
// have been: a public channel of a valid name, or one that carried the
// right signature (exact: over the very strings the router got) refused
// for it. With its signature, a presence channel is refused only for its
// channel_data, a user's stream only for its user_data.
func checkRouteRefusal(t *testing.T, sign uint8, channel, channelData string, err error, exact, parsed bool) {
	t.Helper()
	private := strings.HasPrefix(channel, privatePrefix)
	presence := strings.HasPrefix(channel, presencePrefix)
	user := strings.HasPrefix(channel, userPrefix)
	valid := ValidChannel(channel)
	switch {
	case !private && !presence && !user && valid && parsed:
		t.Fatalf("public %q refused: %v", channel, err)
	case !exact:
	case sign == signPrivate && private && !presence && valid:
		t.Fatalf("%q refused with its signature: %v", channel, err)
	case sign == signPresence && presence && valid && !errors.Is(err, errChannelData) &&
		!(channelData == "" && errors.Is(err, errAuth)):
		t.Fatalf("%q refused with its signature: %v", channel, err)
	case sign == signUser && user && !errors.Is(err, errChannelData):
		t.Fatalf("%q refused with its signature: %v", channel, err)
	}
}

// userStreamOf reports whether channel is the stream of the user
// userData names by its "id" (a string, or a number as written).
func userStreamOf(channel, userData string) bool {
	var ud map[string]json.RawMessage
	if json.Unmarshal([]byte(userData), &ud) != nil {
		return false
	}
	var s string
	if json.Unmarshal(ud["id"], &s) == nil {
		return channel == userPrefix+s
	}
	return channel == userPrefix+string(ud["id"])
}

// FuzzConnFrame holds the connection's reader to its contract on any
// frame: it never panics or closes, and it either passes the frame on to
// the session as it came or answers it with exactly one frame, a
// pusher:error; only a good sign-in does both (its answer, then the
// subscription to the user's stream).
func FuzzConnFrame(f *testing.F) {
	for _, s := range []string{
		`{"event":"pusher:subscribe","data":{"channel":"news"}}`,
		`{"event":"client-x","channel":"private-a","data":{}}`,
		`{"event":"client-x","channel":"news","data":{}}`,
		`{"event":"pusher:whatever"}`,
		signinFrame(`{"id":"u2"}`, docApp.UserAuth(docSocket, `{"id":"u2"}`)),
		`not json`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(signinFrame(`{"id":"u2"}`, docApp.UserAuth(docSocket, `{"id":"u2"}`))), true)
	f.Fuzz(func(t *testing.T, frame []byte, signedIn bool) {
		h := newConnHarness()
		h.c.signedIn = signedIn
		sent, handled := h.frame(string(frame))
		if len(h.rec.closes) != 0 {
			t.Fatalf("closed: %+v", h.rec.closes)
		}
		for _, s := range sent {
			if !json.Valid([]byte(s)) {
				t.Fatalf("sent %q", s)
			}
		}
		switch {
		case len(sent) == 0 && len(handled) == 1:
			if handled[0] != string(frame) || !passable(frame) {
				t.Fatalf("passed on %q for %q", handled[0], frame)
			}
		case len(sent) == 1 && len(handled) == 0:
			if !strings.HasPrefix(sent[0], `{"event":"pusher:error","data":{"code":`) {
				t.Fatalf("answered %s", sent[0])
			}
		case len(sent) == 1 && len(handled) == 1:
			if signedIn || !strings.HasPrefix(sent[0], `{"event":"pusher:signin_success","data":`) ||
				!strings.HasPrefix(handled[0], `{"event":"pusher:subscribe","data":{"channel":"#server-to-user-`) {
				t.Fatalf("sent %s, passed %s", sent[0], handled[0])
			}
		default:
			t.Fatalf("sent %q, passed %q for %q", sent, handled, frame)
		}
	})
}

// passable reports whether the session may get frame: a Pusher event it
// handles, or a client event on a private or presence channel.
func passable(frame []byte) bool {
	var e struct {
		Event   string `json:"event"`
		Channel string `json:"channel"`
	}
	if json.Unmarshal(frame, &e) != nil {
		return false
	}
	switch e.Event {
	case "pusher:subscribe", "pusher:unsubscribe", "pusher:ping", "pusher:pong":
		return true
	}
	return strings.HasPrefix(e.Event, clientPrefix) &&
		(strings.HasPrefix(e.Channel, privatePrefix) || strings.HasPrefix(e.Channel, presencePrefix))
}
