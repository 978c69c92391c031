package config

import (
	"fmt"
)

// applyPresets applies AnyCable's configuration presets: those given with
// --presets, or else the ones the platform's environment variables reveal
// (fly on Fly.io, heroku on Heroku). A preset only changes settings still
// at their defaults, so a flag or variable always wins over it. Afterwards
// Server.Presets lists the presets applied, for the startup log.
//
// Where AnyCable's presets also set the broadcast adapters and their port,
// those settings belong to the broadcast adapters' configuration, which
// applies them itself.
func (c *Config) applyPresets(getenv func(string) string) error {
	presets := c.Server.Presets
	if presets == nil {
		presets = detectPresets(getenv)
	}
	defaults := Default()
	applied := []string{}
	for _, p := range presets {
		switch p {
		case "fly":
			if err := c.flyPreset(defaults, getenv); err != nil {
				return err
			}
		case "heroku":
			c.herokuPreset(defaults)
		case "broker":
			c.brokerPreset(defaults)
		default: // "none"
			continue
		}
		applied = append(applied, p)
	}
	c.Server.Presets = applied
	return nil
}

// detectPresets recognizes Fly.io and Heroku by the variables they set, as
// AnyCable does.
func detectPresets(getenv func(string) string) []string {
	set := func(names ...string) bool {
		for _, n := range names {
			if getenv(n) == "" {
				return false
			}
		}
		return true
	}
	var presets []string
	if set("FLY_APP_NAME", "FLY_ALLOC_ID", "FLY_REGION") {
		presets = append(presets, "fly")
	}
	if set("HEROKU_APP_ID", "HEROKU_DYNO_ID") {
		presets = append(presets, "heroku")
	}
	return presets
}

// herokuPreset listens on every interface: Heroku's router reaches the
// dyno from outside (the port comes from PORT, which --port reads).
func (c *Config) herokuPreset(defaults *Config) {
	if c.Server.Host == defaults.Server.Host {
		c.Server.Host = "0.0.0.0"
	}
}

// flyPreset listens on every interface and, unless Redis is configured,
// clusters the region's machines over embedded NATS through Fly's private
// network (<region>.<app>.internal); ANYCABLE_FLY_RPC_APP_NAME points RPC
// at that app's machines in the region.
func (c *Config) flyPreset(defaults *Config, getenv func(string) string) error {
	region, app := getenv("FLY_REGION"), getenv("FLY_APP_NAME")
	if region == "" || app == "" {
		return fmt.Errorf("--presets fly needs FLY_REGION and FLY_APP_NAME in the environment (Fly.io sets them)")
	}
	if c.Server.Host == defaults.Server.Host {
		c.Server.Host = "0.0.0.0"
	}
	e, de := &c.Cluster.Embedded, &defaults.Cluster.Embedded
	if e.Addr == de.Addr {
		e.Addr = "nats://0.0.0.0:4222"
	}
	if e.ClusterAddr == de.ClusterAddr {
		e.ClusterAddr = "nats://0.0.0.0:5222"
	}
	if e.ClusterName == de.ClusterName {
		e.ClusterName = fmt.Sprintf("%s-%s-cluster", app, region)
	}
	if e.Routes == nil {
		e.Routes = []string{fmt.Sprintf("nats://%s.%s.internal:5222", region, app)}
	}
	cl := &c.Cluster
	if cl.PubSub == defaults.Cluster.PubSub {
		switch {
		case cl.RedisURL != defaults.Cluster.RedisURL:
			cl.PubSub = "redis"
		case cl.NATSServers == defaults.Cluster.NATSServers:
			// No NATS of its own: embed one (deriveCluster points the
			// client at it).
			cl.PubSub, cl.EmbedNATS = "nats", true
		default:
			cl.PubSub = "nats"
		}
	}
	if rpcApp := getenv("ANYCABLE_FLY_RPC_APP_NAME"); rpcApp != "" && c.RPC.Host == defaults.RPC.Host {
		c.RPC.Host = fmt.Sprintf("dns:///%s.%s.internal:50051", region, rpcApp)
	}
	return nil
}

// brokerPreset turns on a broker and the pub/sub that goes with it: NATS
// JetStream with embedded NATS, else the memory broker, and Redis pub/sub
// when a Redis URL is set. (Cablehub's default broker is already memory;
// AnyCable's is none.)
func (c *Config) brokerPreset(defaults *Config) {
	cl := &c.Cluster
	if cl.Broker == defaults.Cluster.Broker && cl.EmbedNATS {
		cl.Broker = "nats"
	}
	if cl.PubSub == defaults.Cluster.PubSub {
		switch {
		case cl.EmbedNATS:
			cl.PubSub = "nats"
		case cl.RedisURL != defaults.Cluster.RedisURL:
			cl.PubSub = "redis"
		}
	}
}
