package pusher

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// Limits of what a client names or sends, Pusher's own.
const (
	// MaxChannelName is the longest channel name, in bytes.
	MaxChannelName = 164
	// MaxUserID is the longest presence user_id.
	MaxUserID = 128
	// MaxUserInfo is the largest presence user_info, in bytes of JSON.
	MaxUserInfo = 1024
)

var (
	errChannelName = errors.New("pusher: invalid channel name")
	errAuth        = errors.New("pusher: invalid authorization")
	errChannelData = errors.New("pusher: invalid channel_data")
)

// Router decides the subscriptions of Pusher sessions (node.SessionRouter):
// a public channel is open to all; a private (and private-encrypted)
// channel needs the app's signature of "<socket_id>:<channel>"; a
// presence channel the signature of "<socket_id>:<channel>:<channel_data>",
// whose user_id and user_info become the session's member; a user's
// stream ("#server-to-user-<id>") a sign-in's signature of its
// user_data, whose id must be <id>. Whispers (client events) are allowed
// on private and presence channels only. The channel name is the stream:
// what the HTTP API, /api/publish and the broadcast adapters publish to
// "news" reaches Pusher clients of "news".
type Router struct {
	App *App
}

// Route decides cmd, the subscribe command of socket sid (see Router).
func (r *Router) Route(sid string, cmd *protocol.Command) (*streams.Subscription, error) {
	channel := cmd.Identifier
	var d subscribeData
	if len(cmd.Data) > 0 {
		if err := json.Unmarshal(cmd.Data, &d); err != nil {
			return nil, err
		}
	}
	if strings.HasPrefix(channel, userPrefix) {
		return r.userStream(sid, channel, &d)
	}
	if !ValidChannel(channel) {
		return nil, errChannelName
	}
	switch {
	case strings.HasPrefix(channel, presencePrefix):
		if d.ChannelData == "" || !r.App.VerifyChannel(sid, channel, d.ChannelData, d.Auth) {
			return nil, errAuth
		}
		m, err := member(d.ChannelData)
		if err != nil {
			return nil, err
		}
		return &streams.Subscription{Stream: channel, Whisper: true, Presence: true, Member: m}, nil
	case strings.HasPrefix(channel, privatePrefix):
		if !r.App.VerifyChannel(sid, channel, "", d.Auth) {
			return nil, errAuth
		}
		return &streams.Subscription{Stream: channel, Whisper: true}, nil
	}
	return &streams.Subscription{Stream: channel}, nil
}

// userStream decides the subscription a sign-in makes to the user's own
// stream.
func (r *Router) userStream(sid, channel string, d *subscribeData) (*streams.Subscription, error) {
	if !r.App.VerifyUser(sid, d.UserData, d.Auth) {
		return nil, errAuth
	}
	id, err := userID(d.UserData)
	if err != nil || channel != userPrefix+id {
		return nil, errChannelData
	}
	return &streams.Subscription{Stream: channel}, nil
}

// Protected reports whether stream is a channel Pusher authorizes itself
// (private, presence, a user's own): other protocols must not open it by
// name (streams.Config.Reserved).
func Protected(stream string) bool {
	return strings.HasPrefix(stream, privatePrefix) || strings.HasPrefix(stream, presencePrefix) || strings.HasPrefix(stream, userPrefix)
}

// ValidChannel reports whether name is a channel a client may subscribe
// to or an API call may publish on: 1 to MaxChannelName of
// [A-Za-z0-9_-=@,.;].
func ValidChannel(name string) bool {
	if name == "" || len(name) > MaxChannelName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("_-=@,.;", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// channelData is a presence channel's channel_data.
type channelData struct {
	UserID   json.RawMessage `json:"user_id"`
	UserInfo json.RawMessage `json:"user_info"`
}

// member reads the member of a presence subscription from its
// channel_data: user_id a non-empty string or a number (Laravel sends
// model ids as numbers; they become their decimal text), user_info any
// JSON within MaxUserInfo, normalised.
func member(text string) (*streams.Member, error) {
	var cd channelData
	if err := json.Unmarshal([]byte(text), &cd); err != nil {
		return nil, errChannelData
	}
	id, ok := idText(cd.UserID)
	if !ok {
		return nil, errChannelData
	}
	m := &streams.Member{ID: id}
	if len(cd.UserInfo) > 0 && string(cd.UserInfo) != "null" {
		if len(cd.UserInfo) > MaxUserInfo {
			return nil, errChannelData
		}
		m.Info = protocol.EncodeMessage(string(cd.UserInfo))
	}
	return m, nil
}

// userID reads the id of a sign-in's user_data: a non-empty string or a
// number.
func userID(text string) (string, error) {
	var ud struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal([]byte(text), &ud); err != nil {
		return "", errChannelData
	}
	id, ok := idText(ud.ID)
	if !ok {
		return "", errChannelData
	}
	return id, nil
}

// idText is the text of a JSON user id: a non-empty string or an integer,
// at most MaxUserID bytes.
func idText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != "" && len(s) <= MaxUserID
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return "", false
	}
	if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
		return "", false
	}
	return n.String(), true
}
