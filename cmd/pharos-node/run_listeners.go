package main

// The daemon's HTTP listeners fit to face a network (internal/httpsec: TLS, mutual TLS, bearer
// tokens) and its OTLP/HTTP receiver (ingest/otlp), on a listener of its own.
//
// Each listener (ingest.http, ingest.otlp, admin) has a guard built once, at start, from its
// tls.* and auth.* keys (restart keys); the guard's files are read again on SIGHUP (reload) and
// when they change (Watch). A listener bound by apply, at start or at a reload, is wrapped in its
// guard's TLS, and its handler in the guard's token check.

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"

	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/ingest/otlp"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/httpsec"
)

// secure builds the guards of the three HTTP listeners from cfg and starts watching their files.
// It runs once, before the first apply; an error names the key.
func (s *sources) secure(cfg config.Config) error {
	s.guards = map[string]*httpsec.Guard{}
	for _, l := range []struct {
		prefix string
		t      config.ListenerTLS
		a      config.ListenerAuth
	}{
		{"ingest.http", cfg.Ingest.HTTP.TLS, cfg.Ingest.HTTP.Auth},
		{"ingest.otlp", cfg.Ingest.OTLP.TLS, cfg.Ingest.OTLP.Auth},
		{"admin", cfg.Admin.TLS, cfg.Admin.Auth},
	} {
		g, err := httpsec.New(httpsec.Options{Listener: l.prefix, CertFile: l.t.CertFile, KeyFile: l.t.KeyFile,
			ClientCAFile: l.t.ClientCAFile, TokenFile: l.a.TokenFile, Registerer: s.reg, Logger: s.log})
		if err != nil {
			key := l.prefix + ".tls.cert_file"
			if l.t.CertFile == "" {
				key = l.prefix + ".auth.token_file"
			}
			return &config.KeyError{Key: key, Reason: err.Error()}
		}
		s.guards[l.prefix] = g
	}
	for _, g := range s.guards {
		if g.Enabled() {
			s.start(func(ctx context.Context) error { g.Watch(ctx, 0); return nil })
		}
	}
	return nil
}

// guard is the guard of the listener whose key is key (ingest.http.listen, ...), nil if none.
func (s *sources) guard(key string) *httpsec.Guard {
	return s.guards[strings.TrimSuffix(key, ".listen")]
}

// guarded wraps h in the token check of key's listener.
func (s *sources) guarded(key string, h http.Handler) http.Handler {
	if g := s.guard(key); g != nil {
		return g.Handler(h)
	}
	return h
}

// secureListener wraps l in the TLS of key's listener.
func (s *sources) secureListener(key string, l net.Listener) net.Listener {
	if g := s.guard(key); g != nil && g.TLS() {
		return tls.NewListener(l, g.TLSConfig())
	}
	return l
}

// reloadGuards reads the guards' files again (SIGHUP); a guard that cannot keeps what it had
// and logs why.
func (s *sources) reloadGuards() {
	for _, g := range s.guards {
		if g.Enabled() {
			_ = g.Reload()
		}
	}
}

// otlpHandler is the OTLP/HTTP receiver of in.OTLP. Records whose resource has no service.name
// get the daemon's source.
func otlpHandler(in config.Ingest, common ingest.Common, source string) (http.Handler, error) {
	h, err := otlp.NewHandler(otlp.Options{Common: common, Source: source, ResourceTags: in.OTLP.ResourceTags,
		MaxBodyBytes: int64(in.OTLP.MaxBodyBytes), MaxRecords: in.OTLP.MaxRecords})
	if err != nil {
		return nil, &config.KeyError{Key: "ingest.otlp", Reason: err.Error()}
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", h)
	return mux, nil
}
