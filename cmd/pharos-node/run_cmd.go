package main

// pharos-node run: the daemon. It joins the Brain's cluster as a hidden node and delivers what
// its ingest sources (HTTP, StatsD, Prometheus scraping, host metrics) accept, through the
// connection manager, with the RAM ring and the spill directory in between.
//
// Start-up order: configuration and preflight (every problem logged naming its key, exit 2),
// logger, the agent (node, spill directory, connection manager), the listeners (exit 1 if one
// cannot bind), then the sources; then READY=1 to systemd. SIGHUP reloads the configuration
// (reload.go). Shutdown, on the first SIGTERM or SIGINT (main cancels ctx): STOPPING=1, the
// sources stop first, then the agent keeps delivering for at most shutdown_timeout and spills
// what is left. A second signal cuts the delivery short: everything left is spilled at once.

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
	"time"

	"ergo.services/ergo/gen"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/spill"
)

// Exit codes of run.
const (
	exitOK      = 0
	exitRuntime = 1 // a listener, the node or the spill directory could not start
	exitConfig  = 2 // bad configuration or cookie
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			printHelp(stdout, "run", nil)
			return exitOK
		}
	}
	// SIGHUP is the daemon's from here on (Go's default would end the process): one arriving
	// before the daemon runs waits for it.
	hups, releaseHUP := takeSIGHUP()
	defer releaseHUP()
	environ := os.Environ()
	out := newLogOutput(stderr, config.Default().Log.Format)
	cfg, err := config.Load(args, environ, os.ReadFile)
	if err != nil {
		logConfigErrors(newLogger(out), "invalid configuration", err)
		return exitConfig
	}
	out.setFormat(cfg.Log.Format)
	setLogLevel(cfg.Log.Level)
	log := newLogger(out)
	pf := preflight(cfg, os.Getenv)
	if err := pf.err(); err != nil {
		logConfigErrors(log, "invalid configuration", err)
		return exitConfig
	}
	logWarnings(log, pf.warnings)
	return runDaemon(ctx, &service{cfg: cfg, pf: pf, args: args, environ: environ, log: log, logOut: out, hups: hups})
}

// withTLS adds the TLS distribution settings to the start log line ev, and warns about settings
// that weaken it.
func withTLS(ev *zerolog.Event, cfg config.Config, log zerolog.Logger) *zerolog.Event {
	t := cfg.TLS
	if !t.Enabled {
		return ev.Bool("tls", false)
	}
	serverName := t.ServerName
	if serverName == "" {
		serverName = brainHost(cfg.Brain.Node) + " (the Brain's host)"
	}
	ev = ev.Dict("tls", zerolog.Dict().Bool("enabled", true).Str("ca_file", t.CAFile).Str("cert_file", t.CertFile).
		Str("key_file", t.KeyFile).Str("server_name", serverName).Bool("insecure_skip_verify", t.InsecureSkipVerify))
	if t.InsecureSkipVerify {
		log.Warn().Str("key", "tls.insecure_skip_verify").
			Msg("TLS without verifying the Brain's certificate: anyone on the path can pose as the Brain; for tests only")
	}
	if t.CertFile == "" {
		log.Info().Msg("TLS without a client certificate (tls.cert_file, tls.key_file): a Brain that verifies peers will refuse the connection")
	}
	return ev
}

// brainHost is the host part of a node name ("" when it has none).
func brainHost(nodeName string) string {
	_, host, _ := strings.Cut(nodeName, "@")
	return host
}

// deliveryConfig is the connection manager's configuration from the delivery.* settings.
func deliveryConfig(d config.Delivery) fsm.Config {
	fcfg := fsm.DefaultConfig()
	fcfg.BaseBackoff, fcfg.MaxBackoff = d.BaseBackoff.D(), d.MaxBackoff.D()
	fcfg.ProbeInterval, fcfg.ProbeSpread = d.ProbeInterval.D(), d.ProbeSpread.D()
	fcfg.MaxPending, fcfg.DrainBatch = d.MaxPending, d.DrainBatch
	fcfg.FlushInterval, fcfg.DrainInterval = d.FlushInterval.D(), d.DrainInterval.D()
	fcfg.Acked = fsm.AckedConfig{BatchSize: d.BatchSize, BatchDelay: d.BatchDelay.D(), Window: d.Window, AckTimeout: d.AckTimeout.D()}
	fcfg.Confirm = fsm.ConfirmConfig{Interval: d.ConfirmInterval.D(), Records: d.ConfirmRecords, MaxUnconfirmed: d.MaxUnconfirmed,
		Timeout: d.ConfirmTimeout.D(), ResendUnconfirmed: d.ResendUnconfirmed}
	return fcfg
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

// agentOptions maps the configuration onto the agent's options. The cookie goes into the node
// options only. preflight has checked what can fail here; the errors remain for safety.
func agentOptions(cfg config.Config, pf *checked, reg prometheus.Registerer, log zerolog.Logger) (agent.Options, error) {
	mode, err := agent.ParseMode(cfg.Brain.Mode)
	if err != nil {
		return agent.Options{}, &config.KeyError{Key: "brain.mode", Reason: err.Error()}
	}
	if otlpTransport(cfg) {
		return otlpAgentOptions(cfg, pf, reg, log)
	}
	name := pf.nodeName
	nopts := node.Options{Cookie: pf.cookie, EPMDPort: pf.epmdPort, TickTime: cfg.Node.NetTick.D()}
	if cfg.Brain.Addr != "" {
		host, port, _ := splitHostPort(cfg.Brain.Addr)
		nopts.Static = map[gen.Atom]node.StaticRoute{gen.Atom(cfg.Brain.Node): {Host: host, Port: port}}
	}
	if cfg.TLS.Enabled {
		tlsCfg, err := node.TLSConfig(node.TLSFiles{CAFile: cfg.TLS.CAFile, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			ServerName: cfg.TLS.ServerName, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}, false)
		if err != nil {
			key := "tls"
			if fe := (*node.TLSFileError)(nil); errors.As(err, &fe) {
				key = map[string]string{"CAFile": "tls.ca_file", "CertFile": "tls.cert_file", "KeyFile": "tls.key_file"}[fe.Field]
			}
			return agent.Options{}, &config.KeyError{Key: key, Reason: err.Error()}
		}
		nopts.ClientTLS = tlsCfg
	}
	fcfg := managerConfig(cfg)

	opts := agent.Options{
		RestartIntensity: cfg.Delivery.RestartIntensity, RestartPeriod: cfg.Delivery.RestartPeriod.D(),
		NodeName:       name,
		NodeOptions:    nopts,
		Brain:          agent.Target{Node: cfg.Brain.Node, Name: cfg.Brain.Name},
		Mode:           mode,
		Delivery:       fcfg,
		RingRecords:    cfg.Buffer.MaxRecords,
		RingBytes:      int(cfg.Buffer.MaxBytes),
		RefuseWhenFull: cfg.Buffer.Overflow == "refuse",
		SpillDir:       cfg.Spill.Dir,
		BrainQueue:     agent.QueueLimit{Max: cfg.Brain.QueueLimit},
		Registerer:     reg,
		Logger:         log,
	}
	if cfg.Clustered() {
		cc, err := clusterConfig(cfg)
		if err != nil {
			return agent.Options{}, err
		}
		opts.Brain, opts.Cluster = agent.Target{}, cc
	}
	return withSpill(cfg, opts)
}

// withSpill adds the spill.* settings to opts.
func withSpill(cfg config.Config, opts agent.Options) (agent.Options, error) {
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
func runDaemon(ctx context.Context, d *service) int {
	log, cfg := d.log, d.cfg
	notify := newNotifier(os.Getenv("NOTIFY_SOCKET"), log)
	defer notify.close()
	d.reg = prometheus.NewRegistry()
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		readBuildInfo().collector())
	opts, err := agentOptions(cfg, d.pf, d.reg, log)
	if err != nil {
		logConfigErrors(log, "invalid configuration", err)
		return exitConfig
	}
	sigs := make(chan os.Signal, 2)
	opts.NodeOptions.Signals = sigs
	defer closeSink(opts)
	a, err := agent.Start(ctx, opts)
	if err != nil {
		signal.Stop(sigs)
		log.Error().Err(err).Msg("cannot start the agent")
		if errors.Is(err, agent.ErrInvalidOptions) {
			return exitConfig
		}
		return exitRuntime
	}
	// From here on, every path ends in closeAgent, which spills what is left.
	runCtx, hard, releaseSignals := watchSignals(ctx, sigs)
	defer releaseSignals()
	d.sources = newSources(a, d.reg, log)
	err = d.sources.secure(cfg)
	if err == nil {
		err = d.sources.apply(cfg.Ingest, cfg.Admin.Listen)
	}
	if err != nil {
		logConfigErrors(log, "cannot start ingestion", err)
		d.sources.stop()
		closeAgent(a, cfg.ShutdownTimeout.D(), hard, log)
		return exitRuntime
	}
	ev := log.Info().Str("node", string(opts.NodeName)).Str("brain_name", cfg.Brain.Name).Str("brain_node", cfg.Brain.Node).
		Str("mode", opts.Mode.String()).Str("http", cfg.Ingest.HTTP.Listen).Str("statsd", cfg.Ingest.StatsD.Listen).
		Int("scrape_targets", len(cfg.Ingest.Scrape.Targets)).Bool("host", cfg.Ingest.Host.Enabled).
		Str("spill", cfg.Spill.Dir).Str("version", readBuildInfo().Version)
	if otlpTransport(cfg) {
		ev = ev.Str("transport", "otlp").Str("otlp_endpoint", cfg.OTLP.Endpoint)
	} else {
		ev = withTLS(ev, cfg, log)
	}
	ev.Msg("pharos-node running")
	notify.send("READY=1\nSTATUS=running")

	var runErr error
loop:
	for {
		select {
		case <-runCtx.Done():
			log.Info().Msg("stopping: no more ingestion; delivering what is left")
			break loop
		case runErr = <-d.sources.failed:
			log.Error().Err(runErr).Msg("an ingest source failed; stopping")
			break loop
		case <-a.Done():
			// The connection manager's supervisor gave up: its tiers were handed back (spilled);
			// exit non-zero so that systemd restarts the daemon.
			runErr = a.Err()
			log.Error().Err(runErr).Msg("the connection manager is down for good; stopping")
			break loop
		case <-d.hups:
			notify.send(reloadingState())
			d.reload()
			notify.send("READY=1\nSTATUS=running")
		}
	}
	notify.send("STOPPING=1")
	d.sources.stop()
	if err := closeAgent(a, d.cfg.ShutdownTimeout.D(), hard, log); err != nil || runErr != nil {
		return exitRuntime
	}
	return exitOK
}

// closeAgent gives the agent shutdown_timeout to deliver; hard (a second signal) makes it
// spill at once.
func closeAgent(a *agent.Agent, timeout time.Duration, hard <-chan struct{}, log zerolog.Logger) error {
	drain, cancel := context.WithTimeout(context.Background(), timeout)
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
	ev.Dur("took", time.Since(start).Round(time.Millisecond)).Uint64("accepted", s.Accepted).Uint64("delivered", s.Delivered).
		Uint64("acked", s.Acked).Int("spilled", s.SpillRecords).Uint64("possibly_lost", s.PossiblyLost).
		Msg("pharos-node stopped")
	return err
}

// watchSignals makes the signals the node hands over (node.Options.Signals: Ergo never sees
// them) the daemon's: the first one cancels the returned context (as main's
// signal.NotifyContext did before the node took the signals), a later one closes hard.
// release stops the delivery and the watching.
func watchSignals(parent context.Context, sigs chan os.Signal) (ctx context.Context, hard <-chan struct{}, release func()) {
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

// serveReady answers /readyz: 200 while the manager is Streaming or Throttled, else 503 (not
// connected, not running between a crash and its restart, closed), with the state and the
// manager's restarts either way. With a cluster the state is Streaming while enough Brains are
// reachable (brain.ready), and a line per Brain follows: up or down, and its shards.
func serveReady(w http.ResponseWriter, st agent.Stats) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if st.State == fsm.Streaming || st.State == fsm.Throttled {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "%s\nrestarts %d\n", strings.ToLower(st.State.String()), st.Restarts)
	if c := st.Cluster; c != nil {
		for _, m := range c.Members {
			up := "down"
			if m.Up {
				up = "up"
			}
			fmt.Fprintf(w, "brain %s %s shards %d\n", m.Brain, up, m.Shards)
		}
	}
}
