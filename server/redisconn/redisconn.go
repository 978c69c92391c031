// Package redisconn connects to Redis the way AnyCable's --redis_url,
// --redis_sentinels and --redis_tls_* flags describe it: one server, a
// Sentinel-managed master, or a Redis Cluster, over TCP or TLS. It hands
// back go-redis's UniversalClient, which the broker and the pub/sub use
// whatever the topology.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/redact"
)

// Options are the connection settings, as the flags give them.
type Options struct {
	// URL is --redis_url: one redis:// or rediss:// URL; several,
	// comma-separated, for the nodes of a Redis Cluster; with Sentinels,
	// the master's name as the host (redis://:password@mymaster/2).
	URL string
	// Sentinels is --redis_sentinels: comma-separated host:port addresses
	// or URLs; the first one's credentials are the Sentinels'.
	Sentinels string
	// KeepAlive is the TCP keepalive period (0: Go's default).
	KeepAlive time.Duration
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration
	// TLSVerify checks the server's certificate (TLS only).
	TLSVerify bool
	// CACertPath, ClientCertPath, ClientKeyPath are PEM files: the CA to
	// verify the server with, and the client's certificate for mutual TLS.
	CACertPath, ClientCertPath, ClientKeyPath string
}

// Mode is the topology a client talks to.
type Mode string

const (
	ModeSingle   Mode = "single"
	ModeSentinel Mode = "sentinel"
	ModeCluster  Mode = "cluster"
)

// Info describes a connection for the startup log.
type Info struct {
	Mode Mode
	// Addrs are the servers given: the URL's, the cluster's seed nodes,
	// or the Sentinels.
	Addrs []string
	// Master is the Sentinel master's name.
	Master string
	TLS    bool
	// Verified is false when TLS does not check the server's certificate.
	Verified bool
	// Probed is false when a single URL's server could not be asked
	// whether it is a cluster node (see Connect).
	Probed bool
}

// Describe is one line for the startup log.
func (i Info) Describe() string {
	var b strings.Builder
	switch i.Mode {
	case ModeSentinel:
		fmt.Fprintf(&b, "Redis Sentinel master %s via %s", i.Master, strings.Join(i.Addrs, ","))
	case ModeCluster:
		fmt.Fprintf(&b, "Redis Cluster via %s", strings.Join(i.Addrs, ","))
	default:
		fmt.Fprintf(&b, "Redis server %s", strings.Join(i.Addrs, ","))
	}
	switch {
	case !i.TLS:
		b.WriteString(" (TLS: off)")
	case i.Verified:
		b.WriteString(" (TLS: on, certificate verified)")
	default:
		b.WriteString(" (TLS: on, certificate not verified)")
	}
	return b.String()
}

// Universal turns o into go-redis options: Sentinel when Sentinels is set,
// a cluster when the URL lists several nodes, else one server. An error
// names the value it refuses with the credentials masked (redact.Error);
// Info holds addresses only, no credentials.
func Universal(o Options) (*redis.UniversalOptions, Info, error) {
	var u *redis.UniversalOptions
	var info Info
	var err error
	if o.Sentinels != "" {
		u, info, err = sentinelOptions(o)
	} else {
		u, info, err = urlOptions(o.URL)
	}
	if err != nil {
		return nil, Info{}, redact.Error(err)
	}
	u.DialTimeout = o.DialTimeout
	if u.TLSConfig != nil {
		info.TLS = true
		if err := configureTLS(u.TLSConfig, o); err != nil {
			return nil, Info{}, err
		}
		info.Verified = !u.TLSConfig.InsecureSkipVerify
	}
	u.Dialer = dialer(o, u.TLSConfig)
	// Contexts' deadlines bound socket reads and writes: go-redis ignores
	// them otherwise and waits out its own 3 s read timeout.
	u.ContextTimeoutEnabled = true
	return u, info, nil
}

// Connect builds the client for o. A single URL may still name a node of
// a Redis Cluster (AnyCable's client finds out by itself): Connect asks
// the server once, within probeTimeout, and uses a cluster client when it
// is one. A server that does not answer then is used as a single server
// (Info.Probed is false, so the caller can say so); list two or more
// nodes to choose cluster mode without asking.
func Connect(ctx context.Context, o Options, probeTimeout time.Duration) (redis.UniversalClient, Info, error) {
	u, info, err := Universal(o)
	if err != nil {
		return nil, Info{}, err
	}
	if info.Mode != ModeSingle {
		info.Probed = true
		return newClient(u), info, nil
	}
	client := redis.NewUniversalClient(u)
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	section, err := client.Info(pctx, "cluster").Result()
	if err != nil {
		return client, info, nil
	}
	info.Probed = true
	if !strings.Contains(section, "cluster_enabled:1") {
		return client, info, nil
	}
	client.Close()
	u.IsClusterMode = true
	info.Mode = ModeCluster
	return newClient(u), info, nil
}

// ClusterStateReload bounds how stale a cluster client's map of slots to
// masters gets while it is used: go-redis reloads it at once on a
// redirect, but a failed-over master answers nothing, so without this its
// commands would fail for a minute (go-redis's default) after a failover.
// A reload is one CLUSTER SLOTS to one node, made in the background when a
// command finds the map older than this.
const ClusterStateReload = time.Second

// newClient builds the client of u; a cluster client reloads its slot map
// every ClusterStateReload while in use.
func newClient(u *redis.UniversalOptions) redis.UniversalClient {
	if !u.IsClusterMode {
		return redis.NewUniversalClient(u)
	}
	o := u.Cluster()
	o.ClusterStateReloadInterval = ClusterStateReload
	return redis.NewClusterClient(o)
}

// urlOptions reads --redis_url: one URL, or a cluster's nodes
// comma-separated (the scheme may be left out, as in AnyCable).
func urlOptions(raw string) (*redis.UniversalOptions, Info, error) {
	var first *redis.Options
	var addrs []string
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSuffix(strings.TrimSpace(item), "/")
		if item == "" {
			continue
		}
		opts, err := redis.ParseURL(withScheme(item))
		if err != nil {
			return nil, Info{}, fmt.Errorf("invalid value %q for --redis_url: %v", raw, err)
		}
		if first == nil {
			first = opts
		}
		addrs = append(addrs, opts.Addr)
	}
	if first == nil {
		return nil, Info{}, fmt.Errorf("invalid value %q for --redis_url: no Redis URL", raw)
	}
	u := &redis.UniversalOptions{
		Addrs: addrs, Username: first.Username, Password: first.Password, DB: first.DB,
		TLSConfig: first.TLSConfig,
	}
	info := Info{Mode: ModeSingle, Addrs: addrs}
	if len(addrs) > 1 {
		if first.DB != 0 {
			return nil, Info{}, fmt.Errorf("invalid value %q for --redis_url: a Redis Cluster has database 0 only", raw)
		}
		u.IsClusterMode = true
		info.Mode = ModeCluster
	}
	return u, info, nil
}

// sentinelOptions reads --redis_sentinels with --redis_url naming the
// master, as AnyCable does: the URL's host is the master's name, its
// credentials and database are the data nodes'; the first Sentinel
// address's credentials are the Sentinels'. TLS is on when either uses
// rediss://.
func sentinelOptions(o Options) (*redis.UniversalOptions, Info, error) {
	master, err := url.Parse(withScheme(strings.TrimSuffix(strings.TrimSpace(o.URL), "/")))
	if err != nil || master.Host == "" {
		return nil, Info{}, fmt.Errorf("invalid value %q for --redis_url: with --redis_sentinels it names the master, e.g. redis://mymaster", o.URL)
	}
	data, err := redis.ParseURL(withScheme(strings.TrimSuffix(strings.TrimSpace(o.URL), "/")))
	if err != nil {
		return nil, Info{}, fmt.Errorf("invalid value %q for --redis_url: %v", o.URL, err)
	}
	u := &redis.UniversalOptions{
		MasterName: master.Host, Username: data.Username, Password: data.Password, DB: data.DB,
		TLSConfig: data.TLSConfig,
	}
	for i, item := range strings.Split(o.Sentinels, ",") {
		if item = strings.TrimSuffix(strings.TrimSpace(item), "/"); item == "" {
			continue
		}
		s, err := redis.ParseURL(withScheme(item))
		if err != nil {
			return nil, Info{}, fmt.Errorf("invalid value %q for --redis_sentinels: %v", o.Sentinels, err)
		}
		if i == 0 {
			u.SentinelUsername, u.SentinelPassword = s.Username, s.Password
			if u.TLSConfig == nil {
				u.TLSConfig = s.TLSConfig
			}
		}
		u.Addrs = append(u.Addrs, s.Addr)
	}
	if len(u.Addrs) == 0 {
		return nil, Info{}, fmt.Errorf("invalid value %q for --redis_sentinels: no address", o.Sentinels)
	}
	return u, Info{Mode: ModeSentinel, Addrs: u.Addrs, Master: u.MasterName}, nil
}

func withScheme(s string) string {
	if strings.Contains(s, "://") {
		return s
	}
	return "redis://" + s
}

// configureTLS applies --redis_tls_*: verification (AnyCable's default is
// off), the CA and the client certificate. ServerName is cleared so each
// connection checks the host it dials (a cluster's or a Sentinel's nodes
// differ from the URL's host).
func configureTLS(c *tls.Config, o Options) error {
	c.ServerName = ""
	c.InsecureSkipVerify = !o.TLSVerify
	if o.CACertPath != "" {
		pem, err := os.ReadFile(o.CACertPath)
		if err != nil {
			return fmt.Errorf("--redis_tls_ca_cert_path: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--redis_tls_ca_cert_path: %s holds no PEM certificate", o.CACertPath)
		}
		c.RootCAs = pool
	}
	if o.ClientCertPath != "" || o.ClientKeyPath != "" {
		cert, err := tls.LoadX509KeyPair(o.ClientCertPath, o.ClientKeyPath)
		if err != nil {
			return fmt.Errorf("--redis_tls_client_cert_path, --redis_tls_client_key_path: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return nil
}

// dialer dials with the TCP keepalive period asked for, over TLS when
// tlsConf is set (go-redis leaves TLS to a custom dialer).
func dialer(o Options, tlsConf *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: o.KeepAlive}
		if tlsConf == nil {
			return d.DialContext(ctx, network, addr)
		}
		td := &tls.Dialer{NetDialer: d, Config: tlsConf}
		return td.DialContext(ctx, network, addr)
	}
}

// Describe names where client connects, for the broker's and the
// pub/sub's startup lines.
func Describe(client redis.UniversalClient) string {
	switch c := client.(type) {
	case *redis.ClusterClient:
		return "cluster " + strings.Join(c.Options().Addrs, ",")
	case *redis.Client:
		if addr := c.Options().Addr; addr != "FailoverClient" {
			return addr
		}
		return "Sentinel master"
	}
	return "redis"
}

// IsCluster reports whether client talks to a Redis Cluster, where every
// key one script or transaction touches must hash to one slot.
func IsCluster(client redis.UniversalClient) bool {
	_, ok := client.(*redis.ClusterClient)
	return ok
}
