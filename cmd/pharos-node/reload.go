package main

// Reload on SIGHUP (what `systemctl reload` sends): the configuration is loaded again from the
// same file, variables and flags, and checked as at start (config.Load and preflight). A bad
// configuration is refused: every problem is logged naming its key and the running
// configuration is kept. Otherwise each changed key is handled by its reload class
// (config.Setting.Reload): live keys (log level and format, ingest listeners and limits,
// scrape targets, host metrics, admin listener, shutdown_timeout) change in the running daemon;
// the others (node, Brain, mode, TLS, buffer, spill, delivery) keep their running value and are
// logged as needing a restart. Nothing the daemon holds is touched: the agent, its connection
// and its records stay as they are.

import (
	"os"
	"os/signal"
	"slices"
	"sort"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/internal/config"
)

// service is the running `pharos-node run`: its configuration as it runs and what a reload
// changes.
type service struct {
	cfg     config.Config // what runs (live keys as last reloaded, the others as started)
	pf      *checked
	args    []string // run's arguments and environment, read again by each reload
	environ []string
	log     zerolog.Logger
	logOut  *logOutput
	reg     *prometheus.Registry
	sources *sources
	hups    <-chan os.Signal // SIGHUP (takeSIGHUP)
}

// takeSIGHUP makes SIGHUP the daemon's: each one is delivered on the returned channel (several
// before a reload is handled count as one) instead of ending the process. release ends it.
func takeSIGHUP() (<-chan os.Signal, func()) {
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	return hups, func() { signal.Stop(hups) }
}

// reloadOutcome is what a reload did, for the log and the tests.
type reloadOutcome struct {
	applied []string // live keys changed (the connection manager's included)
	agent   []string // of those, the connection manager's (delivery.*)
	restart []string // keys changed in the file but kept until a restart
	err     error    // the configuration was refused (nothing changed)
}

// reload reads the configuration again and applies what can change live.
func (d *service) reload() reloadOutcome {
	log := d.log
	log.Info().Msg("SIGHUP: reloading the configuration")
	d.sources.reloadGuards() // the listeners' token and certificate files, changed or not
	next, err := config.Load(d.args, d.environ, os.ReadFile)
	if err == nil {
		pf := preflight(next, os.Getenv)
		err = pf.err()
		if err == nil {
			logWarnings(log, pf.warnings)
		}
	}
	if err != nil {
		logConfigErrors(log, "reload refused: invalid configuration; the running configuration is kept", err)
		return reloadOutcome{err: err}
	}
	out := d.diff(next)
	if len(out.applied)+len(out.agent) > 0 {
		running := d.cfg
		for _, key := range append(slices.Clone(out.applied), out.agent...) {
			if err := running.Set(key, next.Values()[key]); err != nil {
				out.err = err
			}
		}
		if out.err == nil {
			out.err = running.Validate()
		}
		if out.err == nil && len(out.agent) > 0 {
			// The connection manager first: it may refuse (confirmations switched on or off),
			// and then nothing changes.
			out.err = d.sources.a.Reconfigure(managerConfig(running))
		}
		if out.err == nil {
			// The log first, so that what the sources log is at the new level.
			d.logOut.setFormat(running.Log.Format)
			setLogLevel(running.Log.Level)
			if out.err = d.sources.apply(running.Ingest, running.Admin.Listen); out.err != nil {
				d.logOut.setFormat(d.cfg.Log.Format)
				setLogLevel(d.cfg.Log.Level)
				if len(out.agent) > 0 {
					_ = d.sources.a.Reconfigure(managerConfig(d.cfg))
				}
			}
		}
		if out.err != nil {
			logConfigErrors(log, "reload refused: cannot apply; the running configuration is kept", out.err)
			return reloadOutcome{err: out.err}
		}
		d.cfg = running
		out.applied = append(out.applied, out.agent...)
		sort.Strings(out.applied)
	}
	for _, key := range out.restart {
		log.Warn().Str("key", key).Str("running", d.cfg.Values()[key]).Str("file", next.Values()[key]).
			Msg("reload: this setting changed but needs a restart; the running value is kept")
	}
	log.Info().Strs("applied", out.applied).Strs("needs_restart", out.restart).Msg("configuration reloaded")
	return out
}

// diff sorts the keys whose value differs between the running configuration and next by their
// reload class.
func (d *service) diff(next config.Config) reloadOutcome {
	var out reloadOutcome
	was, now := d.cfg.Values(), next.Values()
	for _, s := range config.Settings() {
		if was[s.Key] == now[s.Key] {
			continue
		}
		switch s.Reload {
		case config.ReloadLive:
			out.applied = append(out.applied, s.Key)
		case config.ReloadAgent:
			out.agent = append(out.agent, s.Key)
		default:
			out.restart = append(out.restart, s.Key)
		}
	}
	sort.Strings(out.applied)
	sort.Strings(out.restart)
	return out
}
