package node

import (
	"context"
	"fmt"
	"strings"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
)

// App is the application back end reached over AnyCable's RPC (a Rails
// app with the anycable gem, serverless-js, …): it authenticates the
// connections no local identifier (JWT, --noauth) accepts, and runs every
// channel the built-in router does not know. rpc.GRPC and rpc.HTTP are
// the two transports.
//
// A returned response is the back end's answer whatever its status (ERROR
// and FAILURE included); an error means no answer (unreachable, timed out,
// refused), and the node then does what AnyCable does: close 1011 on
// Connect, drop the command, log the Disconnect. Calls block for at most
// the transport's command timeout; ctx cancels them sooner.
type App interface {
	Connect(ctx context.Context, sid string, req *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error)
	Command(ctx context.Context, sid string, req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error)
	Disconnect(ctx context.Context, sid string, req *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error)
}

// DisconnectMode says which sessions get a Disconnect call when they end
// (--disconnect_mode).
type DisconnectMode int

const (
	// DisconnectAuto calls Disconnect for sessions whose Connect, or one
	// of whose subscribes, was answered by the back end.
	DisconnectAuto DisconnectMode = iota
	// DisconnectAlways calls Disconnect for every identified session.
	DisconnectAlways
	// DisconnectNever makes no Disconnect calls.
	DisconnectNever
)

// ParseDisconnectMode reads --disconnect_mode. Unlike AnyCable, which
// takes any other value as "never", an unknown value is an error: a typo
// must not silently turn Disconnect calls off.
func ParseDisconnectMode(s string) (DisconnectMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return DisconnectAuto, nil
	case "always":
		return DisconnectAlways, nil
	case "never":
		return DisconnectNever, nil
	}
	return DisconnectAuto, fmt.Errorf("unknown disconnect mode %q (want auto, always or never)", s)
}

func (m DisconnectMode) String() string {
	switch m {
	case DisconnectAlways:
		return "always"
	case DisconnectNever:
		return "never"
	}
	return "auto"
}

// AppOptions configure how the node uses its App.
type AppOptions struct {
	// Headers are the request headers passed in Env.headers (--headers,
	// lower-case names); REMOTE_ADDR is always added.
	Headers []string
	// Cookies, when not empty, are the only cookies passed in the cookie
	// header (--proxy-cookies).
	Cookies []string
	// DisconnectMode is --disconnect_mode.
	DisconnectMode DisconnectMode
	// DisconnectRate bounds Disconnect calls per second
	// (--disconnect_rate); ≤ 0 means DefaultDisconnectRate.
	DisconnectRate int
	// DisconnectBacklog bounds the Disconnect calls waiting
	// (--disconnect_backlog_size); ≤ 0 means DefaultDisconnectBacklog.
	DisconnectBacklog int
}

// AnyCable's --disconnect_rate and --disconnect_backlog_size defaults.
const (
	DefaultDisconnectRate    = 100
	DefaultDisconnectBacklog = 4096
)

// DefaultAppOptions are AnyCable's defaults: the cookie header, every
// cookie, auto mode, 100 Disconnect calls/s, 4096 waiting.
func DefaultAppOptions() AppOptions {
	return AppOptions{
		Headers:           []string{"cookie"},
		DisconnectMode:    DisconnectAuto,
		DisconnectRate:    DefaultDisconnectRate,
		DisconnectBacklog: DefaultDisconnectBacklog,
	}
}
