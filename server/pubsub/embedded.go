package pubsub

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configure an in-process nats-server.
type EmbeddedOptions struct {
	// Addr is the client URL to listen on, e.g. nats://127.0.0.1:4222.
	Addr string
	// ClusterAddr, when set, listens for routes from other servers.
	ClusterAddr string
	// ClusterName names the cluster all routed servers share.
	ClusterName string
	// Routes are other servers' cluster URLs.
	Routes []string
	// JetStreamDir, when set, enables JetStream with its store there (the
	// NATS JetStream broker needs it).
	JetStreamDir string
	// ServerName names the server among its routes, which must be unique
	// in a cluster; empty derives it from Addr, which is not unique when
	// every machine listens on the same address (the runner passes the
	// node's id).
	ServerName string
}

// DefaultNATSURL is nats.go's default server URL, AnyCable's default for
// --nats_servers and --enats_addr too.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// DefaultEmbeddedOptions are the embedded server's settings without flags:
// AnyCable's --enats_addr and --enats_cluster_name defaults, no cluster.
func DefaultEmbeddedOptions() EmbeddedOptions {
	return EmbeddedOptions{Addr: DefaultNATSURL, ClusterName: "anycable-cluster"}
}

// StartEmbedded runs a real nats-server inside this process and waits until
// it accepts clients.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	host, port, err := hostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("--enats_addr: %w", err)
	}
	name := o.ServerName
	if name == "" {
		name = fmt.Sprintf("cablehub-%s-%d", host, port)
	}
	opts := &server.Options{Host: host, Port: port, NoSigs: true, NoLog: true, ServerName: name}
	if o.ClusterAddr != "" {
		ch, cp, err := hostPort(o.ClusterAddr)
		if err != nil {
			return nil, fmt.Errorf("--enats_cluster: %w", err)
		}
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: ch, Port: cp}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("--enats_cluster_routes: %w", err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if o.JetStreamDir != "" {
		opts.JetStream, opts.StoreDir = true, o.JetStreamDir
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start on %s", o.Addr)
	}
	return ns, nil
}

func hostPort(addr string) (string, int, error) {
	if !strings.Contains(addr, "://") {
		addr = "nats://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", 0, err
	}
	host, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}
