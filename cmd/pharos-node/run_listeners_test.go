package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/httpsec"
)

// SIGHUP reloads every guard's files, changed or not (Watch reloads only changed ones), and
// the daemon survives it.
func TestSIGHUPReloadsGuards(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("t0k3n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g, err := newGuard("admin", config.ListenerTLS{}, config.ListenerAuth{TokenFile: tokens}, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := newGuard("ingest.http", config.ListenerTLS{}, config.ListenerAuth{}, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sources{cancel: cancel, failed: make(chan error, 8), guards: []*httpsec.Guard{g, plain}}
	s.watchGuards(ctx)
	defer s.stop()
	reloads := func() float64 {
		families, _ := reg.Gather()
		for _, f := range families {
			if f.GetName() != "pharos_http_reloads_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["listener"] == "admin" && labels["result"] == "ok" {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	for round := 1; round <= 2; round++ {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for reloads() != float64(round) {
			if time.Now().After(deadline) {
				t.Fatalf("after SIGHUP %d: %v reloads", round, reloads())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
