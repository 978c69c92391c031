package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// credentialForms are the forms a URL setting's credentials take, each
// with the password or token it must never show: a URL with a user and
// password, a NATS token, AnyCable's Sentinel address with a password and
// no scheme, userinfo without a scheme, an HTTP RPC URL, and a list whose
// second item has one.
var credentialForms = []struct{ value, secret string }{
	{"redis://user:pw-redis@127.0.0.1:6379/1", "pw-redis"},
	{"nats://pw-token@127.0.0.1:4222", "pw-token"},
	{":pw-sentinel@127.0.0.1:26379", "pw-sentinel"},
	{"user:pw-userinfo@127.0.0.1:50051", "pw-userinfo"},
	{"http://user:pw-http@127.0.0.1:8080/rpc", "pw-http"},
	{"nats://127.0.0.1:1,nats://user:pw-list@127.0.0.1:2", "pw-list"},
}

// urlSettings are the settings known to take URLs; the table must reach
// each of them (the iteration covers every other setting too).
var urlSettings = []string{"rpc_host", "redis_url", "redis_sentinels", "nats_servers", "enats_addr",
	"enats_cluster", "enats_cluster_routes", "statsd_host", "host", "metrics_host", "node_id"}

// TestNoSettingShowsURLCredentials sets every setting in turn, from its
// flag and from its variable, to each credential form: wherever the value
// is taken, --print-config must not show the password (with =secrets it
// does, so the value did get there), and wherever it is refused, the error
// must not either. Iterating over every setting, rather than a list of the
// URL ones, keeps a URL setting added later from being forgotten.
func TestNoSettingShowsURLCredentials(t *testing.T) {
	p := newParser()
	Default().bind(p)
	taken := map[string]bool{}
	for _, o := range p.options {
		for _, f := range credentialForms {
			for _, in := range []Input{
				{Args: []string{"--" + o.name + "=" + f.value}},
				{Environ: []string{o.env[0] + "=" + f.value}},
			} {
				var out bytes.Buffer
				in.Out = &out
				in.Args = append(in.Args, "--print-config")
				_, err := Load(in)
				if !errors.Is(err, ErrPrinted) {
					if err != nil && strings.Contains(err.Error(), f.secret) {
						t.Errorf("--%s=%s: the error shows the credential: %v", o.name, f.value, err)
					}
					continue
				}
				if strings.Contains(out.String(), f.secret) {
					t.Errorf("--%s=%s: --print-config shows the credential:\n%s", o.name, f.value, grepLines(out.String(), f.secret))
				}
				out.Reset()
				in.Args[len(in.Args)-1] = "--print-config=secrets"
				if _, err := Load(in); errors.Is(err, ErrPrinted) && strings.Contains(out.String(), f.secret) {
					taken[o.name] = true
				}
			}
		}
	}
	for _, name := range urlSettings {
		if !taken[name] {
			t.Errorf("no credential form reached --%s: the table does not test it", name)
		}
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
