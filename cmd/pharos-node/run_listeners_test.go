package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/httpsec"
)

// counterSum sums the series of the counter name whose labels include want.
func counterSum(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// The guards of the three listeners: a bad file refuses the start naming its key; reloadGuards
// (what SIGHUP runs) reads the files of every guard that has some, changed or not.
func TestListenerGuards(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("t0k3n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# none yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Ingest.OTLP.Auth.TokenFile = empty
	s := newSources(nil, prometheus.NewRegistry(), zerolog.Nop())
	err := s.secure(cfg)
	var ke *config.KeyError
	if !errors.As(err, &ke) || ke.Key != "ingest.otlp.auth.token_file" || !strings.Contains(ke.Reason, httpsec.ErrNoTokens.Error()) {
		t.Fatalf("an empty token file: %v", err)
	}
	s.stop()

	cfg.Ingest.OTLP.Auth.TokenFile = tokens
	cfg.Admin.Auth.TokenFile = tokens
	reg := prometheus.NewRegistry()
	s = newSources(nil, reg, zerolog.Nop())
	defer s.stop()
	if err := s.secure(cfg); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		s.reloadGuards()
		for _, l := range []string{"ingest.otlp", "admin"} {
			if got := counterSum(t, reg, "pharos_http_reloads_total", map[string]string{"listener": l, "result": "ok"}); got != float64(round) {
				t.Fatalf("round %d: %s reloaded %v times", round, l, got)
			}
		}
		if got := counterSum(t, reg, "pharos_http_reloads_total", map[string]string{"listener": "ingest.http"}); got != 0 {
			t.Fatalf("ingest.http has no files but reloaded %v times", got)
		}
	}
	if g := s.guard("ingest.otlp.listen"); g == nil || !g.Enabled() || g.TLS() {
		t.Fatalf("guard of ingest.otlp.listen: %v", g)
	}
}
