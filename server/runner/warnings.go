package runner

import "cablehub/server/config"

// startupWarnings lists, one line each, what a configuration leaves unusable
// or unprotected, naming the flags that change it. Each is logged as a WARN
// at startup: these setups are legal (a local demo, a port protected by
// network placement) but must never be silent.
func startupWarnings(cfg *config.Config) []string {
	var w []string
	if !cfg.Public && !cfg.Noauth && cfg.JWTSecret == "" {
		if cfg.APIEnabled() {
			w = append(w, "every WebSocket connection will be refused: nothing can authenticate it; set --secret or --jwt_secret, or --noauth / --public")
		} else {
			w = append(w, "every WebSocket connection will be refused and the API is off: set --secret (or --jwt_secret and --api_secret), or --public for open access")
		}
	}
	if cfg.StreamsSecret == "" {
		w = append(w, "signed streams cannot be used (every signed_stream_name is rejected): no --streams_secret or --secret is set")
	}
	if cfg.TurboStreams && cfg.TurboStreamsSecret == "" {
		w = append(w, "--turbo_streams is on but Turbo streams cannot be used (every subscription is rejected): set --turbo_streams_secret, --streams_secret or --secret")
	}
	if cfg.EffectiveAPISecret() == "" {
		switch {
		case cfg.APIPort != 0 && cfg.GRPCPort != 0:
			w = append(w, "the REST API on --api_port and the gRPC API on --grpc_port accept calls without a token (no --api_secret or --secret): anyone who can reach those ports can publish and disconnect clients")
		case cfg.APIPort != 0:
			w = append(w, "the REST and gRPC API on --api_port accept calls without a token (no --api_secret or --secret): anyone who can reach that port can publish and disconnect clients")
		case cfg.GRPCPort != 0:
			w = append(w, "the gRPC API on --grpc_port accepts calls without a token (no --api_secret or --secret): anyone who can reach that port can publish and disconnect clients")
		}
		if cfg.Public && cfg.APIPort == 0 {
			w = append(w, "--public without --api_secret or --secret: the API on the main port accepts calls without a token")
		}
	}
	return w
}
