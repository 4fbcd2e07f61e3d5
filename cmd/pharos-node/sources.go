package main

// The daemon's ingest sources and HTTP servers, reconfigurable in place: apply compares the
// settings it is given with those running and changes only what differs. An HTTP address kept
// keeps its listener and server (the handler is swapped, connections stay up); a new address
// is bound before an old one is closed; StatsD, scraping and host metrics restart only when
// their own settings change. Every listener is bound before anything running is changed, so a
// failed apply leaves the running sources as they were.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/httpsec"
)

// stopGrace bounds how long stopping the HTTP servers may take.
const stopGrace = 2 * time.Second

// sources are the running ingest sources and servers.
type sources struct {
	a        *agent.Agent
	reg      *prometheus.Registry
	log      zerolog.Logger
	timeouts httpTimeouts
	failed   chan error // the first source that stopped on its own

	ctx    context.Context // the parent of every source; cancel ends them all
	cancel context.CancelFunc
	wg     sync.WaitGroup

	servers map[string]*httpServer // by address
	statsd  *runner
	scrape  *runner
	host    *runner
	cur     config.Ingest // what runs
	admin   string
	started bool                      // apply ran once
	guards  map[string]*httpsec.Guard // by listener (run_listeners.go)
}

// httpServer is one HTTP listener whose handler a reload can swap.
type httpServer struct {
	srv     *http.Server
	handler atomic.Pointer[http.Handler]
}

func (h *httpServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*h.handler.Load()).ServeHTTP(w, r)
}

// runner is one running source: StatsD, the scraper or the host collector.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *runner) stop() {
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// httpTimeouts bound the daemon's HTTP servers (ingest and admin): a client that sends its
// headers or its request body (at most the ingest limit, 4 MiB) too slowly is cut off instead
// of holding a handler until shutdown, a reader that takes its response too slowly too, and an
// idle keep-alive connection is closed.
type httpTimeouts struct {
	readHeader, read, write, idle time.Duration
}

func defaultHTTPTimeouts() httpTimeouts {
	return httpTimeouts{readHeader: 10 * time.Second, read: 30 * time.Second, write: 30 * time.Second,
		idle: 2 * time.Minute}
}

func newSources(a *agent.Agent, reg *prometheus.Registry, log zerolog.Logger) *sources {
	ctx, cancel := context.WithCancel(context.Background())
	return &sources{a: a, reg: reg, log: log, timeouts: defaultHTTPTimeouts(), failed: make(chan error, 8),
		ctx: ctx, cancel: cancel, servers: map[string]*httpServer{}}
}

// adminHandler serves /metrics, /healthz and /readyz.
func (s *sources) adminHandler() http.Handler {
	admin := http.NewServeMux()
	admin.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	admin.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	admin.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		serveReady(w, s.a.Stats())
	})
	return admin
}

// apply makes the running sources those of in and adminListen. On error nothing running has
// changed; the error names the key.
func (s *sources) apply(in config.Ingest, adminListen string) error {
	source := in.Source
	if source == "" {
		source, _ = os.Hostname()
	}
	common := ingest.Common{Sink: s.a, Logger: s.log, Registerer: s.reg}

	// 1. Build the HTTP handlers and bind every new address.
	want := map[string]http.Handler{}
	keys := map[string]string{}
	if l := in.HTTP.Listen; l != "" {
		h, err := ingest.NewHandler(ingest.HTTPOptions{Common: common, Source: source,
			MaxBodyBytes: int64(in.HTTP.MaxBodyBytes), MaxRecords: in.HTTP.MaxRecords,
			MaxInflightBytes: int64(in.HTTP.MaxInflightBytes), BodyTimeout: in.HTTP.BodyTimeout.D()})
		if err != nil {
			return &config.KeyError{Key: "ingest.http", Reason: err.Error()}
		}
		mux := http.NewServeMux()
		mux.Handle("/v1/", h)
		if adminListen == "" {
			mux.Handle("/", s.adminHandler())
		}
		want[l], keys[l] = mux, "ingest.http.listen"
	}
	if l := adminListen; l != "" {
		want[l], keys[l] = s.adminHandler(), "admin.listen"
	}
	if l := in.OTLP.Listen; l != "" {
		h, err := otlpHandler(in, common, source)
		if err != nil {
			return err
		}
		want[l], keys[l] = h, "ingest.otlp.listen"
	}
	bound := map[string]net.Listener{}
	closeBound := func() {
		for _, l := range bound {
			l.Close()
		}
	}
	for addr := range want {
		if _, running := s.servers[addr]; running {
			continue
		}
		var lc net.ListenConfig
		l, err := lc.Listen(s.ctx, "tcp", addr)
		if err != nil {
			closeBound()
			return &config.KeyError{Key: keys[addr], Reason: err.Error()}
		}
		bound[addr] = s.secureListener(keys[addr], l)
	}

	// 2. Build StatsD, the scraper and the host collector where their settings changed.
	first := !s.started
	var statsd func(context.Context) error
	statsdChanged := first || in.StatsD != s.cur.StatsD || (in.StatsD.Listen != "" && in.Source != s.cur.Source)
	var statsdConn net.PacketConn
	if statsdChanged && in.StatsD.Listen != "" {
		st, err := ingest.NewStatsD(ingest.StatsDOptions{Common: common, Source: source, MaxPacketBytes: int(in.StatsD.MaxPacketBytes),
			FlushInterval: in.StatsD.FlushInterval.D(), MaxSeries: in.StatsD.MaxSeries})
		if err != nil {
			closeBound()
			return &config.KeyError{Key: "ingest.statsd.max_packet_bytes", Reason: err.Error()}
		}
		if in.StatsD.Listen != s.cur.StatsD.Listen || s.statsd == nil {
			var lc net.ListenConfig
			conn, err := lc.ListenPacket(s.ctx, "udp", in.StatsD.Listen)
			if err != nil {
				closeBound()
				return &config.KeyError{Key: "ingest.statsd.listen", Reason: err.Error()}
			}
			statsdConn = conn
		}
		statsd = func(ctx context.Context) error { return st.Serve(ctx, statsdConn) }
	}
	var scrape func(context.Context) error
	scrapeChanged := first || !sameScrape(in.Scrape, s.cur.Scrape) || (len(in.Scrape.Targets) > 0 && in.Source != s.cur.Source)
	if scrapeChanged && len(in.Scrape.Targets) > 0 {
		sc, err := ingest.NewScraper(ingest.ScrapeOptions{Common: common, Targets: in.Scrape.Targets, Source: source,
			Interval: in.Scrape.Interval.D(), Timeout: min(in.Scrape.Timeout.D(), in.Scrape.Interval.D())})
		if err != nil {
			closeBound()
			if statsdConn != nil {
				statsdConn.Close()
			}
			return &config.KeyError{Key: "ingest.scrape.targets", Reason: err.Error()}
		}
		scrape = sc.Run
	}
	var host func(context.Context) error
	hostChanged := first || in.Host != s.cur.Host || (in.Host.Enabled && in.Source != s.cur.Source)
	if hostChanged && in.Host.Enabled {
		hc, err := ingest.NewHostCollector(ingest.HostOptions{Common: common, Source: source, Interval: in.Host.Interval.D()})
		if err != nil {
			closeBound()
			if statsdConn != nil {
				statsdConn.Close()
			}
			return &config.KeyError{Key: "ingest.host", Reason: err.Error()}
		}
		host = hc.Run
	}

	// 3. Nothing can fail from here on: switch.
	for addr, h := range want {
		h = s.guarded(keys[addr], h)
		if hs, running := s.servers[addr]; running {
			hs.handler.Store(&h)
			continue
		}
		s.serveHTTP(keys[addr], addr, bound[addr], h)
	}
	for addr, hs := range s.servers {
		if _, kept := want[addr]; !kept {
			s.shutdown(hs)
			delete(s.servers, addr)
			s.log.Info().Str("addr", addr).Msg("stopped listening")
		}
	}
	if statsdChanged {
		if statsd != nil && statsdConn == nil {
			// The same address with other settings: the old socket closes before the new one
			// binds (datagrams sent in between are refused by the kernel).
			s.statsd.stop()
			s.statsd = nil
			var lc net.ListenConfig
			conn, err := lc.ListenPacket(s.ctx, "udp", in.StatsD.Listen)
			if err != nil {
				s.cur.StatsD = config.StatsD{}
				s.log.Error().Err(err).Str("key", "ingest.statsd.listen").Msg("StatsD could not bind again; it is off")
				statsd = nil
			} else {
				statsdConn = conn
			}
		} else {
			s.statsd.stop()
			s.statsd = nil
		}
		if statsd != nil {
			s.log.Info().Str("key", "ingest.statsd.listen").Str("addr", statsdConn.LocalAddr().String()).Msg("listening")
			s.statsd = s.start(statsd)
		}
	}
	if scrapeChanged {
		s.scrape.stop()
		s.scrape = nil
		if scrape != nil {
			s.scrape = s.start(scrape)
		}
	}
	if hostChanged {
		s.host.stop()
		s.host = nil
		if host != nil {
			s.host = s.start(host)
		}
	}
	s.cur, s.admin, s.started = in, adminListen, true
	return nil
}

func sameScrape(a, b config.Scrape) bool {
	if a.Interval != b.Interval || a.Timeout != b.Timeout || len(a.Targets) != len(b.Targets) {
		return false
	}
	for i := range a.Targets {
		if a.Targets[i] != b.Targets[i] {
			return false
		}
	}
	return true
}

// serveHTTP serves h on l, bound to the configured address addr, until stop.
func (s *sources) serveHTTP(key, addr string, l net.Listener, h http.Handler) {
	t := s.timeouts
	hs := &httpServer{}
	hs.handler.Store(&h)
	hs.srv = &http.Server{Handler: hs, ReadHeaderTimeout: t.readHeader, ReadTimeout: t.read,
		WriteTimeout: t.write, IdleTimeout: t.idle,
		ErrorLog: nil, BaseContext: func(net.Listener) context.Context { return s.ctx }}
	s.servers[addr] = hs
	s.log.Info().Str("key", key).Str("addr", l.Addr().String()).Msg("listening")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hs.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.report(err)
		}
	}()
}

// start runs f until stop; an error it returns before stop is reported on failed.
func (s *sources) start(f func(context.Context) error) *runner {
	ctx, cancel := context.WithCancel(s.ctx)
	r := &runner{cancel: cancel, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(r.done)
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.report(err)
		}
	}()
	return r
}

func (s *sources) report(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

// shutdown stops one server: in-flight requests get stopGrace to finish.
func (s *sources) shutdown(hs *httpServer) {
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	if err := hs.srv.Shutdown(ctx); err != nil {
		_ = hs.srv.Close()
	}
}

// stop ends the servers (in-flight requests get stopGrace to finish) and the sources, and
// waits for them.
func (s *sources) stop() {
	var wg sync.WaitGroup
	for _, hs := range s.servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.shutdown(hs) }()
	}
	wg.Wait()
	s.cancel()
	s.wg.Wait()
}
