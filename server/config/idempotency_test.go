package config

import (
	"testing"
	"time"
)

func TestIdempotencyWindow(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want time.Duration
	}{
		{nil, nil, 120 * time.Second},
		{nil, []string{"--idempotency_window", "1"}, time.Second},
		{nil, []string{"--idempotency_window=0"}, 0},
		{nil, []string{"--idempotency_window=1500ms"}, 1500 * time.Millisecond},
		{map[string]string{"ANYCABLE_IDEMPOTENCY_WINDOW": "30"}, nil, 30 * time.Second},
		{map[string]string{"ANYCABLE_IDEMPOTENCY_WINDOW": "30"}, []string{"--idempotency_window=5"}, 5 * time.Second},
	}
	for _, c := range cases {
		cfg, err := parse(t, c.env, c.args...)
		if err != nil {
			t.Fatalf("%v %v: %v", c.env, c.args, err)
		}
		if cfg.Node.IdempotencyWindow != c.want {
			t.Errorf("%v %v: %s, want %s", c.env, c.args, cfg.Node.IdempotencyWindow, c.want)
		}
	}
	if _, err := parse(t, nil, "--idempotency_window=-1"); err == nil {
		t.Error("a negative window was accepted")
	}
}
