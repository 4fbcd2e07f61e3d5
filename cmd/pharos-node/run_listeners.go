package main

// The daemon's listeners fit to face a network (internal/httpsec: TLS, mutual TLS, bearer
// tokens, reloaded on SIGHUP and when a file changes) and its OTLP/HTTP receiver (ingest/otlp),
// on a listener of its own.

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/ingest/otlp"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/httpsec"
)

// newGuard builds the guard of the listener whose settings are under prefix (ingest.http,
// ingest.otlp, admin); with none of them set it does nothing.
func newGuard(prefix string, t config.ListenerTLS, a config.ListenerAuth, reg prometheus.Registerer, log zerolog.Logger) (*httpsec.Guard, error) {
	g, err := httpsec.New(httpsec.Options{Listener: prefix, CertFile: t.CertFile, KeyFile: t.KeyFile,
		ClientCAFile: t.ClientCAFile, TokenFile: a.TokenFile, Registerer: reg, Logger: log})
	if err != nil {
		key := prefix + ".tls"
		if a.TokenFile != "" && t.CertFile == "" {
			key = prefix + ".auth.token_file"
		}
		return nil, &config.KeyError{Key: key, Reason: err.Error()}
	}
	return g, nil
}

// startOTLP serves the OTLP/HTTP receiver on ingest.otlp.listen. Records whose resource has no
// service.name get the daemon's source.
func (s *sources) startOTLP(ctx context.Context, cfg config.Config, common ingest.Common, source string, reg prometheus.Registerer, log zerolog.Logger) error {
	c := cfg.Ingest.OTLP
	h, err := otlp.NewHandler(otlp.Options{Common: common, Source: source, ResourceTags: c.ResourceTags,
		MaxBodyBytes: int64(c.MaxBodyBytes), MaxRecords: c.MaxRecords})
	if err != nil {
		return &config.KeyError{Key: "ingest.otlp", Reason: err.Error()}
	}
	g, err := newGuard("ingest.otlp", c.TLS, c.Auth, reg, log)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", h)
	return s.serveHTTP(ctx, "ingest.otlp.listen", c.Listen, mux, g, log)
}

// watchGuards reloads the guards' files on SIGHUP and when they change, until ctx is done;
// with no guard that reads a file, it does nothing (and SIGHUP keeps its default action).
func (s *sources) watchGuards(ctx context.Context) {
	var active []*httpsec.Guard
	for _, g := range s.guards {
		if g.Enabled() {
			active = append(active, g)
		}
	}
	if len(active) == 0 {
		return
	}
	for _, g := range active {
		s.run(func() error { g.Watch(ctx, 0); return nil })
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	s.run(func() error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				for _, g := range active {
					_ = g.Reload() // logged and counted by the guard
				}
			}
		}
	})
}
