package runner

import "github.com/cablehub/cablehub/server/config"

// startupWarnings lists, one line each, what a configuration leaves unusable
// or unprotected, naming the flags that change it. Each is logged as a WARN
// at startup: these setups are legal (a local demo, a port protected by
// network placement) but must never be silent.
func startupWarnings(cfg *config.Config) []string {
	var w []string
	// With RPC on (the default) the back end authenticates connections;
	// whether it runs is /health's and the RPC log's business.
	if cfg.RPC.Disabled && !cfg.Server.Public && !cfg.Server.Noauth && cfg.JWT.Secret == "" {
		if cfg.APIEnabled() {
			w = append(w, "every WebSocket connection will be refused: nothing can authenticate it (--norpc, no JWT secret); set --rpc_host instead of --norpc, --jwt_secret or --secret, or --noauth / --public")
		} else {
			w = append(w, "every WebSocket connection will be refused and the API is off (--norpc, no secret): set --rpc_host instead of --norpc, --secret (or --jwt_secret and --api_secret), or --public for open access")
		}
	}
	if cfg.Streams.Secret == "" {
		w = append(w, "signed streams cannot be used (every signed_stream_name is rejected): no --streams_secret or --secret is set")
	}
	if cfg.Streams.Turbo && cfg.Streams.TurboSecret == "" {
		w = append(w, "--turbo_streams is on but Turbo streams cannot be used (every subscription is rejected): set --turbo_streams_secret, --streams_secret or --secret")
	}
	if cfg.Admin.Enabled && !cfg.AdminServed() {
		if cfg.APIEnabled() {
			w = append(w, "--admin is on but the admin console is not served: nothing can sign in to it; set --admin_password (or an API secret: --api_secret or --secret)")
		} else {
			w = append(w, "--admin is on but the admin console is not served: it calls the REST API, which is off; set --admin_password and --secret (or --api_secret)")
		}
	}
	w = append(w, deliveryWarnings(cfg)...)
	w = append(w, broadcastWarnings(cfg)...)
	if cfg.EffectiveAPISecret() == "" {
		switch {
		case cfg.API.Port != 0 && cfg.API.GRPCPort != 0:
			w = append(w, "the REST API on --api_port and the gRPC API on --grpc_port accept calls without a token (no --api_secret or --secret): anyone who can reach those ports can publish and disconnect clients")
		case cfg.API.Port != 0:
			w = append(w, "the REST and gRPC API on --api_port accept calls without a token (no --api_secret or --secret): anyone who can reach that port can publish and disconnect clients")
		case cfg.API.GRPCPort != 0:
			w = append(w, "the gRPC API on --grpc_port accepts calls without a token (no --api_secret or --secret): anyone who can reach that port can publish and disconnect clients")
		}
		if cfg.Server.Public && cfg.API.Port == 0 {
			w = append(w, "--public without --api_secret or --secret: the API on the main port accepts calls without a token")
		}
	}
	return w
}

// deliveryWarnings names the cluster setups that cannot keep the delivery
// guarantee (every subscriber gets a stream's publications in offset
// order, and recovers missed ones from history on any node). The memory
// broker keeps offsets, epochs, history and presence per node, so with a
// cluster pub/sub they do not agree across nodes. The Redis broker with
// NATS stamps in Redis and publishes over NATS in two steps, so two nodes
// publishing to one stream can deliver offsets out of order, and a session
// drops a publication whose offset is at or below the last it sent. The
// "none" broker promises no history at all, so it needs no warning.
func deliveryWarnings(cfg *config.Config) []string {
	switch {
	case cfg.Cluster.Broker == "memory" && (cfg.Cluster.PubSub == "redis" || cfg.Cluster.PubSub == "nats"):
		return []string{"--broker memory with --pubsub " + cfg.Cluster.PubSub + ": each node stamps its own offsets and epochs and keeps its own history and presence, so history and session recovery do not work across nodes and offsets from different nodes collide; use --broker redis"}
	case cfg.Cluster.Broker == "redis" && cfg.Cluster.PubSub == "nats":
		return []string{"--broker redis with --pubsub nats: offsets are stamped in Redis and published over NATS in two steps, so when two nodes publish to one stream their publications can reach a node out of offset order, and sessions then hold them up to 200ms to sort them; use --pubsub redis (stamp and publish in one step)"}
	}
	return nil
}
