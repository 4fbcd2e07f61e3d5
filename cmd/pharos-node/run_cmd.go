package main

// pharos-node run: the daemon. It joins the Brain's cluster as a hidden node and delivers what
// its ingest sources (HTTP, StatsD, Prometheus scraping, host metrics) accept, through the
// connection manager, with the RAM ring and the spill directory in between.
//
// Start-up order: configuration (exit 2 naming the key on error), cookie, logger, the agent
// (node, spill directory, connection manager), the listeners (exit 1 if one cannot bind), then
// the sources. Shutdown, on the first SIGTERM or SIGINT (main cancels ctx): the sources stop
// first, then the agent keeps delivering for at most shutdown_timeout and spills what is left.
// A second signal cuts the delivery short: everything left is spilled at once.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"ergo.services/ergo/gen"
	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/httpsec"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/spill"
)

// Exit codes of run.
const (
	exitOK      = 0
	exitRuntime = 1 // a listener, the node or the spill directory could not start
	exitConfig  = 2 // bad configuration or cookie
)

// stopGrace bounds how long stopping the HTTP servers may take.
const stopGrace = 2 * time.Second

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprintln(stdout, "usage: pharos-node run [--config FILE] [--key value ...]")
			config.Usage(stdout)
			return exitOK
		}
	}
	cfg, err := config.Load(args, os.Environ(), os.ReadFile)
	if err != nil {
		fmt.Fprintf(stderr, "pharos-node run: %v\n", err)
		return exitConfig
	}
	if err := checkRunConfig(cfg); err != nil {
		fmt.Fprintf(stderr, "pharos-node run: %v\n", err)
		return exitConfig
	}
	cookie, err := config.CookieFromEnv(os.Getenv, cfg.Node.CookieFile, os.Stat, os.ReadFile)
	if err != nil {
		fmt.Fprintf(stderr, "pharos-node run: %v\n", err)
		return exitConfig
	}
	log := newLogger(cfg.Log, stderr)
	return runDaemon(ctx, cfg, cookie, log)
}

// checkRunConfig checks what config.Validate cannot know: the manager's constraints.
func checkRunConfig(cfg config.Config) error {
	if cfg.Brain.Mode != "acked" && cfg.Buffer.MaxRecords <= cfg.Delivery.MaxPending {
		return &config.KeyError{Key: "buffer.max_records", Reason: fmt.Sprintf("must exceed delivery.max_pending (%d), got %d", cfg.Delivery.MaxPending, cfg.Buffer.MaxRecords)}
	}
	if cfg.Brain.Addr != "" {
		if _, _, err := splitHostPort(cfg.Brain.Addr); err != nil {
			return &config.KeyError{Key: "brain.addr", Reason: err.Error()}
		}
	}
	return nil
}

func splitHostPort(addr string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, uint16(p), nil
}

// newLogger builds the zerolog logger of log.level and log.format (auto: console on a
// terminal, JSON otherwise).
func newLogger(c config.Log, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	console := c.Format == "console"
	if c.Format == "auto" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// agentOptions maps the configuration onto the agent's options. The cookie goes into the node
// options only.
func agentOptions(cfg config.Config, cookie string, reg prometheus.Registerer, log zerolog.Logger) (agent.Options, error) {
	mode, err := agent.ParseMode(cfg.Brain.Mode)
	if err != nil {
		return agent.Options{}, &config.KeyError{Key: "brain.mode", Reason: err.Error()}
	}
	epmdPort := cfg.Node.EpmdPort
	if epmdPort == 0 {
		if epmdPort, err = node.EPMDPortFromEnv(os.Getenv); err != nil {
			return agent.Options{}, &config.KeyError{Key: "node.epmd_port", Source: "env ERL_EPMD_PORT", Reason: err.Error()}
		}
	}
	name := cfg.Node.Name
	if name == "" {
		host, err := os.Hostname()
		if err != nil {
			return agent.Options{}, &config.KeyError{Key: "node.name", Reason: "not set, and no host name: " + err.Error()}
		}
		name = "pharos@" + host
	}
	nopts := node.Options{Cookie: cookie, EPMDPort: epmdPort, TickTime: cfg.Node.NetTick.D()}
	if cfg.Brain.Addr != "" {
		host, port, _ := splitHostPort(cfg.Brain.Addr)
		nopts.Static = map[gen.Atom]node.StaticRoute{gen.Atom(cfg.Brain.Node): {Host: host, Port: port}}
	}
	if cfg.TLS.Enabled {
		tlsCfg, err := node.TLSConfig(node.TLSFiles{CAFile: cfg.TLS.CAFile, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			ServerName: cfg.TLS.ServerName, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}, false)
		if err != nil {
			return agent.Options{}, &config.KeyError{Key: "tls", Reason: err.Error()}
		}
		nopts.ClientTLS = tlsCfg
	}
	d := cfg.Delivery
	fcfg := fsm.DefaultConfig()
	fcfg.BaseBackoff, fcfg.MaxBackoff = d.BaseBackoff.D(), d.MaxBackoff.D()
	fcfg.MaxPending, fcfg.DrainBatch = d.MaxPending, d.DrainBatch
	fcfg.FlushInterval, fcfg.DrainInterval = d.FlushInterval.D(), d.DrainInterval.D()
	fcfg.Acked = fsm.AckedConfig{BatchSize: d.BatchSize, BatchDelay: d.BatchDelay.D(), Window: d.Window, AckTimeout: d.AckTimeout.D()}

	opts := agent.Options{
		NodeName:    gen.Atom(name),
		NodeOptions: nopts,
		Brain:       agent.Target{Node: gen.Atom(cfg.Brain.Node), Name: gen.Atom(cfg.Brain.Name)},
		Mode:        mode,
		Delivery:    fcfg,
		RingRecords: cfg.Buffer.MaxRecords,
		RingBytes:   int(cfg.Buffer.MaxBytes),
		SpillDir:    cfg.Spill.Dir,
		BrainQueue:  agent.QueueLimit{Max: cfg.Brain.QueueLimit},
		Registerer:  reg,
		Logger:      log,
	}
	if cfg.Spill.Dir != "" {
		syncPolicy, err := spill.ParseSyncPolicy(cfg.Spill.Sync)
		if err != nil {
			return agent.Options{}, &config.KeyError{Key: "spill.sync", Reason: err.Error()}
		}
		overflow, err := spill.ParseOverflowPolicy(cfg.Spill.Overflow)
		if err != nil {
			return agent.Options{}, &config.KeyError{Key: "spill.overflow", Reason: err.Error()}
		}
		opts.SpillOptions = []spill.Option{
			spill.WithSync(syncPolicy), spill.WithSyncInterval(cfg.Spill.SyncInterval.D()),
			spill.WithOverflow(overflow), spill.WithMaxBytes(int64(cfg.Spill.MaxBytes)),
			spill.WithSegmentSize(int64(cfg.Spill.SegmentBytes)),
		}
	}
	return opts, nil
}

// runDaemon runs until ctx is done, then shuts down; it returns the exit code.
func runDaemon(ctx context.Context, cfg config.Config, cookie string, log zerolog.Logger) int {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	opts, err := agentOptions(cfg, cookie, reg, log)
	if err != nil {
		log.Error().Err(err).Msg("configuration")
		return exitConfig
	}
	a, err := agent.Start(ctx, opts)
	if err != nil {
		log.Error().Err(err).Msg("cannot start the agent")
		if errors.Is(err, agent.ErrInvalidOptions) {
			return exitConfig
		}
		return exitRuntime
	}
	// From here on, every path ends in closeAgent, which spills what is left.
	runCtx, hard, releaseSignals := takeOverSignals(ctx)
	defer releaseSignals()
	source := cfg.Ingest.Source
	if source == "" {
		source, _ = os.Hostname()
	}
	common := ingest.Common{Sink: a, Logger: log, Registerer: reg}
	sources, err := startSources(cfg, common, source, a, reg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start ingestion")
		closeAgent(a, cfg, hard, log)
		if errors.Is(err, config.ErrInvalid) {
			return exitConfig
		}
		return exitRuntime
	}
	log.Info().Str("node", string(opts.NodeName)).Str("brain", string(opts.Brain.Name)+"@"+string(opts.Brain.Node)).
		Str("mode", opts.Mode.String()).Str("http", cfg.Ingest.HTTP.Listen).Str("statsd", cfg.Ingest.StatsD.Listen).
		Int("scrape_targets", len(cfg.Ingest.Scrape.Targets)).Bool("host", cfg.Ingest.Host.Enabled).
		Str("spill", cfg.Spill.Dir).Msg("pharos-node running")

	var runErr error
	select {
	case <-runCtx.Done():
		log.Info().Msg("stopping: no more ingestion; delivering what is left")
	case runErr = <-sources.failed:
		log.Error().Err(runErr).Msg("an ingest source failed; stopping")
	}
	sources.stop()
	if err := closeAgent(a, cfg, hard, log); err != nil || runErr != nil {
		return exitRuntime
	}
	return exitOK
}

// closeAgent gives the agent shutdown_timeout to deliver; hard (a second signal) makes it
// spill at once.
func closeAgent(a *agent.Agent, cfg config.Config, hard <-chan struct{}, log zerolog.Logger) error {
	drain, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	go func() {
		select {
		case <-hard:
			log.Warn().Msg("second signal: spilling what is left now")
			cancel()
		case <-drain.Done():
		}
	}()
	start := time.Now()
	err := a.Close(drain)
	s := a.Stats()
	ev := log.Info()
	if err != nil {
		ev = log.Error().Err(err)
	}
	ev.Dur("took", time.Since(start)).Uint64("accepted", s.Accepted).Uint64("delivered", s.Delivered).
		Uint64("acked", s.Acked).Int("spilled", s.SpillRecords).Uint64("possibly_lost", s.PossiblyLost).
		Msg("pharos-node stopped")
	return err
}

// ergoSignalSettle is how long takeOverSignals lets the signal handler Ergo starts with every
// node register before it removes it.
const ergoSignalSettle = 20 * time.Millisecond

// takeOverSignals makes SIGTERM and SIGINT the daemon's. Every Ergo node starts a goroutine
// that, on the first SIGTERM or SIGINT, stops the node at once (its processes, the connection
// manager among them, die without draining) and calls signal.Reset() for the whole process, so
// that a second signal kills it before anything is spilled. Node.SetCTRLC(false) cannot turn
// it off safely (it closes a channel still registered with os/signal, and a later signal then
// panics). So, once that goroutine has registered (it runs when the node starts, well before
// this), the handlers of both signals are reset (Ergo's goroutine then waits forever, harmless)
// and the daemon's own is installed: the first signal cancels the returned context (as main's
// signal.NotifyContext did before the reset), a later one closes hard. release ends the
// handling.
func takeOverSignals(parent context.Context) (ctx context.Context, hard <-chan struct{}, release func()) {
	time.Sleep(ergoSignalSettle)
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(parent)
	hardCh := make(chan struct{})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-sigs:
				if ctx.Err() == nil {
					cancel()
					continue
				}
				close(hardCh)
				return
			case <-done:
				return
			}
		}
	}()
	return ctx, hardCh, func() {
		signal.Stop(sigs)
		close(done)
		wg.Wait()
		cancel()
	}
}

// sources are the running ingest sources and servers.
type sources struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	servers  []*http.Server
	failed   chan error // the first source that stopped on its own
	timeouts httpTimeouts
	guards   []*httpsec.Guard // of each HTTP listener (run_listeners.go)
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

// startSources binds every listener first (so that a taken port fails the start), then runs
// the servers and sources.
func startSources(cfg config.Config, common ingest.Common, source string, a *agent.Agent, reg *prometheus.Registry, log zerolog.Logger) (*sources, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sources{cancel: cancel, failed: make(chan error, 8), timeouts: defaultHTTPTimeouts()}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	admin := http.NewServeMux()
	admin.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	admin.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	admin.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { serveReady(w, a.State()) })

	if l := cfg.Ingest.HTTP.Listen; l != "" {
		h, err := ingest.NewHandler(ingest.HTTPOptions{Common: common, Source: source,
			MaxBodyBytes: int64(cfg.Ingest.HTTP.MaxBodyBytes), MaxRecords: cfg.Ingest.HTTP.MaxRecords})
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("/v1/", h)
		if cfg.Admin.Listen == "" {
			mux.Handle("/", admin)
		}
		g, err := newGuard("ingest.http", cfg.Ingest.HTTP.TLS, cfg.Ingest.HTTP.Auth, reg, log)
		if err != nil {
			return nil, err
		}
		if err := s.serveHTTP(ctx, "ingest.http.listen", l, mux, g, log); err != nil {
			return nil, err
		}
	}
	if l := cfg.Admin.Listen; l != "" {
		g, err := newGuard("admin", cfg.Admin.TLS, cfg.Admin.Auth, reg, log)
		if err != nil {
			return nil, err
		}
		if err := s.serveHTTP(ctx, "admin.listen", l, admin, g, log); err != nil {
			return nil, err
		}
	}
	if cfg.Ingest.OTLP.Listen != "" {
		if err := s.startOTLP(ctx, cfg, common, source, reg, log); err != nil {
			return nil, err
		}
	}
	if l := cfg.Ingest.StatsD.Listen; l != "" {
		maxPacket := int(cfg.Ingest.StatsD.MaxPacketBytes) // config.Validate keeps it within a datagram
		st, err := ingest.NewStatsD(ingest.StatsDOptions{Common: common, Source: source, MaxPacketBytes: maxPacket})
		if err != nil {
			return nil, &config.KeyError{Key: "ingest.statsd.max_packet_bytes", Reason: err.Error()}
		}
		var lc net.ListenConfig
		conn, err := lc.ListenPacket(ctx, "udp", l)
		if err != nil {
			return nil, &config.KeyError{Key: "ingest.statsd.listen", Reason: err.Error()}
		}
		s.run(func() error { return st.Serve(ctx, conn) })
	}
	if targets := cfg.Ingest.Scrape.Targets; len(targets) > 0 {
		sc, err := ingest.NewScraper(ingest.ScrapeOptions{Common: common, Targets: targets, Source: source,
			Interval: cfg.Ingest.Scrape.Interval.D(), Timeout: min(cfg.Ingest.Scrape.Timeout.D(), cfg.Ingest.Scrape.Interval.D())})
		if err != nil {
			return nil, &config.KeyError{Key: "ingest.scrape.targets", Reason: err.Error()}
		}
		s.run(func() error { return sc.Run(ctx) })
	}
	if cfg.Ingest.Host.Enabled {
		hc, err := ingest.NewHostCollector(ingest.HostOptions{Common: common, Source: source, Interval: cfg.Ingest.Host.Interval.D()})
		if err != nil {
			return nil, &config.KeyError{Key: "ingest.host", Reason: err.Error()}
		}
		s.run(func() error { return hc.Run(ctx) })
	}
	s.watchGuards(ctx)
	ok = true
	return s, nil
}

// serveHTTP binds addr now and serves handler until stop, with g's TLS and token check.
func (s *sources) serveHTTP(ctx context.Context, key, addr string, handler http.Handler, g *httpsec.Guard, log zerolog.Logger) error {
	l, err := g.Listen(ctx, addr)
	if err != nil {
		return &config.KeyError{Key: key, Reason: err.Error()}
	}
	s.guards = append(s.guards, g)
	t := s.timeouts
	srv := &http.Server{Handler: g.Handler(handler), ReadHeaderTimeout: t.readHeader, ReadTimeout: t.read,
		WriteTimeout: t.write, IdleTimeout: t.idle,
		ErrorLog: nil, BaseContext: func(net.Listener) context.Context { return ctx }}
	s.servers = append(s.servers, srv)
	log.Info().Str("key", key).Str("addr", l.Addr().String()).Bool("tls", g.TLS()).Msg("listening")
	s.run(func() error {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// run runs a source; an error it returns before stop is reported on failed.
func (s *sources) run(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			select {
			case s.failed <- err:
			default:
			}
		}
	}()
}

// stop ends the servers (in-flight requests get stopGrace to finish) and the sources, and
// waits for them.
func (s *sources) stop() {
	shutdown, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	for _, srv := range s.servers {
		if err := srv.Shutdown(shutdown); err != nil {
			_ = srv.Close()
		}
	}
	s.cancel()
	s.wg.Wait()
}

// serveReady answers /readyz: 200 while the manager is Streaming or Throttled, else 503, with
// the state either way.
func serveReady(w http.ResponseWriter, state fsm.State) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if state == fsm.Streaming || state == fsm.Throttled {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, strings.ToLower(state.String()))
}
