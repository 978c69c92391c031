// Package redistest starts Redis Clusters for tests: real redis-server
// processes on free loopback ports, joined with redis-cli.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters (and their replicas) on loopback.
type Cluster struct {
	// Addrs are the masters' addresses, then the replicas'.
	Addrs []string
	dir   string
	procs []*exec.Cmd
}

// Options shape a cluster.
type Options struct {
	Masters int // 3 when 0
	// Replicas per master (0: none).
	Replicas int
	// NodeTimeout is cluster-node-timeout (how soon a master is failed
	// over); Redis's default when 0.
	NodeTimeout time.Duration
}

// Start runs a cluster with every slot covered and waits until every node
// says the cluster is ok. Stop ends it.
func Start(o Options) (*Cluster, error) {
	if o.Masters == 0 {
		o.Masters = 3
	}
	c := &Cluster{}
	var err error
	if c.dir, err = os.MkdirTemp("", "cablehub-redis-cluster-"); err != nil {
		return nil, err
	}
	for range o.Masters * (1 + o.Replicas) {
		if err := c.startNode(o.NodeTimeout); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, a := range c.Addrs {
		if err := WaitAnswer(a, "PONG", "ping"); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.join(o); err != nil {
		c.Stop()
		return nil, err
	}
	for _, a := range c.Addrs {
		if err := WaitAnswer(a, "cluster_state:ok", "cluster", "info"); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// join makes the nodes one cluster: redis-cli --cluster create, which
// wants three masters at least; a single master takes every slot itself.
func (c *Cluster) join(o Options) error {
	if o.Masters == 1 && o.Replicas == 0 {
		host, port, _ := net.SplitHostPort(c.Addrs[0])
		if out, err := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "addslotsrange", "0", "16383").CombinedOutput(); err != nil {
			return fmt.Errorf("cluster addslotsrange: %v %s", err, out)
		}
		return nil
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", fmt.Sprint(o.Replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %v %s", err, out)
	}
	return nil
}

// startNode starts one cluster-enabled server on a free port and waits
// until it answers. The port is free when picked but may be taken before
// the server binds it (tests run in parallel): then another one is
// tried.
func (c *Cluster) startNode(timeout time.Duration) error {
	var lastErr error
	for range 5 {
		addr, cmd, err := c.tryNode(timeout)
		if err == nil {
			c.procs = append(c.procs, cmd)
			c.Addrs = append(c.Addrs, addr)
			return nil
		}
		lastErr = err
	}
	return lastErr
}

func (c *Cluster) tryNode(timeout time.Duration) (string, *exec.Cmd, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(c.dir, fmt.Sprintf("nodes-%d.conf", port)), "--dir", c.dir}
	if timeout > 0 {
		// A replica takes over however long ago it last heard from its
		// master: with a short timeout Redis would otherwise deem its
		// data too old (cluster-replica-validity-factor).
		args = append(args, "--cluster-node-timeout", fmt.Sprint(timeout.Milliseconds()), "--cluster-replica-validity-factor", "0")
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return "", nil, fmt.Errorf("redis-server on %s exited at once (port taken?)", addr)
		default:
		}
		if conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			conn.Close()
			return addr, cmd, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	return "", nil, fmt.Errorf("redis-server on %s did not answer within 10 s", addr)
}

// Kill ends the node at addr at once (SIGKILL).
func (c *Cluster) Kill(addr string) {
	for i, a := range c.Addrs {
		if a == addr {
			c.procs[i].Process.Kill()
			waitGone(a)
		}
	}
}

// Stop kills every node and removes their files.
func (c *Cluster) Stop() {
	for i, p := range c.procs {
		p.Process.Kill()
		waitGone(c.Addrs[i])
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}

// waitGone waits (up to 5 s) until nothing listens on addr any more.
func waitGone(addr string) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		conn.Close()
	}
}

// WaitAnswer waits up to 20 s for redis-cli's answer to args at addr to
// hold want.
func WaitAnswer(addr, want string, args ...string) error {
	host, port, _ := net.SplitHostPort(addr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if strings.Contains(string(out), want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s answered %q to %v", addr, out, args)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Keys lists the keys matching pattern on every master of client.
func Keys(ctx context.Context, client *redis.ClusterClient, pattern string) []string {
	var mu sync.Mutex
	var keys []string
	client.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		k, err := node.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, k...)
		mu.Unlock()
		return err
	})
	return keys
}
