package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Validate refuses impossible values. It reports every problem (errors.Join of *KeyError), each
// naming its key and, for a configuration from Load, where the value came from; when two
// settings conflict it blames the one that was set over the one left at its default.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		src := ""
		if o, ok := c.origin[key]; ok {
			src = o
		}
		errs = append(errs, &KeyError{Key: key, Source: src, Reason: fmt.Sprintf(format, args...)})
	}
	set := func(key string) bool { _, ok := c.origin[key]; return ok }

	otlp := c.Brain.Transport == "otlp"
	switch {
	case c.Clustered():
		if otlp {
			bad("brain.transport", "otlp goes to one OTLP receiver: brain.targets and brain.discovery are for brain.transport erlang")
		}
		c.validateCluster(bad)
	case c.Brain.Node == "" && !otlp:
		bad("brain.node", "is required (name@host) with brain.transport erlang, or a cluster: brain.targets or brain.discovery")
	case c.Brain.Node != "":
		if err := checkNodeName(c.Brain.Node); err != nil {
			bad("brain.node", "%v", err)
		}
	}
	if c.Node.Name != "" {
		if err := checkNodeName(c.Node.Name); err != nil {
			bad("node.name", "%v", err)
		}
	}
	if c.Brain.Name == "" {
		bad("brain.name", "is required")
	} else if strings.ContainsAny(c.Brain.Name, " @'\"") {
		bad("brain.name", "must be a registered name (an atom such as pharos_brain), got %q", c.Brain.Name)
	}
	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(key, "must be %s, got %q", orList(allowed), v)
	}
	oneOf("brain.transport", c.Brain.Transport, "erlang", "otlp")
	oneOf("brain.mode", c.Brain.Mode, "payload", "term", "subject", "acked")
	oneOf("otlp.compression", c.OTLP.Compression, "gzip", "none")
	oneOf("otlp.temporality", c.OTLP.Temporality, "cumulative", "delta")
	errs = append(errs, c.validateOTLP(set)...)
	oneOf("spill.sync", c.Spill.Sync, "always", "interval", "never")
	oneOf("spill.overflow", c.Spill.Overflow, "drop_oldest", "refuse")
	oneOf("buffer.overflow", c.Buffer.Overflow, "drop_oldest", "refuse")
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "json", "console", "auto")
	if c.TLS.Enabled && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			bad("tls.cert_file", "is required with tls.key_file")
		} else {
			bad("tls.key_file", "is required with tls.cert_file")
		}
	}
	if c.Brain.QueueLimit < 0 {
		bad("brain.queue_limit", "must be 0 (off) or positive, got %d", c.Brain.QueueLimit)
	}
	if c.Node.EpmdPort < 0 || c.Node.EpmdPort > 65535 {
		bad("node.epmd_port", "must be a port number, got %d", c.Node.EpmdPort)
	}
	for _, a := range []struct{ key, addr string }{
		{"brain.addr", c.Brain.Addr}, {"ingest.http.listen", c.Ingest.HTTP.Listen},
		{"ingest.statsd.listen", c.Ingest.StatsD.Listen}, {"admin.listen", c.Admin.Listen},
		{"ingest.otlp.listen", c.Ingest.OTLP.Listen},
	} {
		if a.addr != "" {
			if err := checkAddr(a.addr); err != nil {
				bad(a.key, "%v", err)
			}
		}
	}
	if l := c.Ingest.HTTP.Listen; l != "" && l == c.Admin.Listen {
		bad("admin.listen", "is ingest.http.listen (%s): leave admin.listen empty to serve both there", l)
	}
	if l := c.Ingest.OTLP.Listen; l != "" && (l == c.Ingest.HTTP.Listen || l == c.Admin.Listen) {
		bad("ingest.otlp.listen", "must be a listener of its own, not ingest.http.listen or admin.listen (%s)", l)
	}
	for _, lt := range []struct {
		prefix string
		l      ListenerTLS
	}{{"ingest.http.tls", c.Ingest.HTTP.TLS}, {"ingest.otlp.tls", c.Ingest.OTLP.TLS}, {"admin.tls", c.Admin.TLS}} {
		switch {
		case lt.l.CertFile != "" && lt.l.KeyFile == "":
			bad(lt.prefix+".key_file", "is required with %s.cert_file", lt.prefix)
		case lt.l.CertFile == "" && lt.l.KeyFile != "":
			bad(lt.prefix+".cert_file", "is required with %s.key_file", lt.prefix)
		case lt.l.CertFile == "" && lt.l.ClientCAFile != "":
			bad(lt.prefix+".client_ca_file", "needs %s.cert_file and %s.key_file (mutual TLS is TLS)", lt.prefix, lt.prefix)
		}
	}
	for i, target := range c.Ingest.Scrape.Targets {
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("ingest.scrape.targets", "item %d: not an http(s) URL: %q", i, target)
		}
	}
	for _, p := range []struct {
		key string
		v   int64
	}{
		{"buffer.max_records", int64(c.Buffer.MaxRecords)}, {"buffer.max_bytes", int64(c.Buffer.MaxBytes)},
		{"spill.max_bytes", int64(c.Spill.MaxBytes)}, {"spill.segment_bytes", int64(c.Spill.SegmentBytes)},
		{"spill.sync_interval", int64(c.Spill.SyncInterval)},
		{"delivery.base_backoff", int64(c.Delivery.BaseBackoff)}, {"delivery.max_backoff", int64(c.Delivery.MaxBackoff)},
		{"delivery.max_pending", int64(c.Delivery.MaxPending)}, {"delivery.flush_interval", int64(c.Delivery.FlushInterval)},
		{"delivery.drain_interval", int64(c.Delivery.DrainInterval)}, {"delivery.drain_batch", int64(c.Delivery.DrainBatch)},
		{"delivery.batch_size", int64(c.Delivery.BatchSize)}, {"delivery.batch_delay", int64(c.Delivery.BatchDelay)},
		{"delivery.window", int64(c.Delivery.Window)}, {"delivery.ack_timeout", int64(c.Delivery.AckTimeout)},
		{"delivery.confirm_records", int64(c.Delivery.ConfirmRecords)}, {"delivery.max_unconfirmed", int64(c.Delivery.MaxUnconfirmed)},
		{"delivery.confirm_timeout", int64(c.Delivery.ConfirmTimeout)},
		{"delivery.restart_intensity", int64(c.Delivery.RestartIntensity)}, {"delivery.restart_period", int64(c.Delivery.RestartPeriod)},
		{"ingest.http.max_body_bytes", int64(c.Ingest.HTTP.MaxBodyBytes)}, {"ingest.http.max_records", int64(c.Ingest.HTTP.MaxRecords)},
		{"ingest.statsd.max_packet_bytes", int64(c.Ingest.StatsD.MaxPacketBytes)},
		{"ingest.http.max_inflight_bytes", int64(c.Ingest.HTTP.MaxInflightBytes)}, {"ingest.http.body_timeout", int64(c.Ingest.HTTP.BodyTimeout)},
		{"ingest.statsd.flush_interval", int64(c.Ingest.StatsD.FlushInterval)}, {"ingest.statsd.max_series", int64(c.Ingest.StatsD.MaxSeries)},
		{"ingest.scrape.interval", int64(c.Ingest.Scrape.Interval)}, {"ingest.scrape.timeout", int64(c.Ingest.Scrape.Timeout)},
		{"ingest.host.interval", int64(c.Ingest.Host.Interval)}, {"node.net_ticktime", int64(c.Node.NetTick)},
		{"ingest.otlp.max_body_bytes", int64(c.Ingest.OTLP.MaxBodyBytes)}, {"ingest.otlp.max_records", int64(c.Ingest.OTLP.MaxRecords)},
		{"shutdown_timeout", int64(c.ShutdownTimeout)},
		{"otlp.timeout", int64(c.OTLP.Timeout)}, {"otlp.max_points_per_request", int64(c.OTLP.MaxPointsPerRequest)},
		{"otlp.max_retry_after", int64(c.OTLP.MaxRetryAfter)},
	} {
		if p.v <= 0 {
			s, _ := Lookup(p.key)
			bad(p.key, "must be positive, got %s", zeroText(s.Arg, p.v))
		}
	}
	// Conflicts between two keys blame the one that was set (the other kept its default).
	conflict := func(a, b string, format string, args ...any) {
		if set(b) && !set(a) {
			bad(b, format, args...)
			return
		}
		bad(a, format, args...)
	}
	if c.Delivery.BaseBackoff > 0 && c.Delivery.MaxBackoff < c.Delivery.BaseBackoff {
		conflict("delivery.max_backoff", "delivery.base_backoff", "delivery.max_backoff (%s) must be at least delivery.base_backoff (%s)",
			c.Delivery.MaxBackoff, c.Delivery.BaseBackoff)
	}
	if c.Delivery.RestartPeriod > 0 && c.Delivery.RestartPeriod < Duration(time.Second) {
		bad("delivery.restart_period", "must be at least 1s (the supervisor counts whole seconds), got %s", c.Delivery.RestartPeriod)
	}
	if c.Delivery.ProbeInterval < 0 {
		bad("delivery.probe_interval", "must not be negative (0s switches probes off), got %s", c.Delivery.ProbeInterval)
	}
	if c.Delivery.ProbeInterval > 0 && c.Delivery.ProbeSpread <= 0 {
		bad("delivery.probe_spread", "must be positive while delivery.probe_interval is set, got %s", c.Delivery.ProbeSpread)
	}
	if c.Delivery.ConfirmInterval < 0 {
		bad("delivery.confirm_interval", "must not be negative (0s switches confirmations off), got %s", c.Delivery.ConfirmInterval)
	}
	if c.Delivery.ConfirmRecords > 0 && c.Delivery.MaxUnconfirmed < c.Delivery.ConfirmRecords {
		conflict("delivery.max_unconfirmed", "delivery.confirm_records", "delivery.max_unconfirmed (%d%s) must be at least delivery.confirm_records (%d%s)",
			c.Delivery.MaxUnconfirmed, c.defaultNote("delivery.max_unconfirmed"), c.Delivery.ConfirmRecords, c.defaultNote("delivery.confirm_records"))
	}
	if c.Ingest.HTTP.MaxInflightBytes > 0 && c.Ingest.HTTP.MaxInflightBytes < c.Ingest.HTTP.MaxBodyBytes {
		conflict("ingest.http.max_inflight_bytes", "ingest.http.max_body_bytes", "ingest.http.max_inflight_bytes (%s%s) must be at least ingest.http.max_body_bytes (%s%s): the largest body could never be read",
			c.Ingest.HTTP.MaxInflightBytes, c.defaultNote("ingest.http.max_inflight_bytes"), c.Ingest.HTTP.MaxBodyBytes, c.defaultNote("ingest.http.max_body_bytes"))
	}
	if c.Ingest.StatsD.MaxPacketBytes > 65535 {
		bad("ingest.statsd.max_packet_bytes", "must be at most 65535 (a UDP datagram), got %d", c.Ingest.StatsD.MaxPacketBytes)
	}
	if c.Spill.MaxBytes > 0 && c.Spill.SegmentBytes > c.Spill.MaxBytes {
		conflict("spill.segment_bytes", "spill.max_bytes", "spill.segment_bytes (%s%s) must not exceed spill.max_bytes (%s%s)",
			c.Spill.SegmentBytes, c.defaultNote("spill.segment_bytes"), c.Spill.MaxBytes, c.defaultNote("spill.max_bytes"))
	}
	if c.Brain.Mode != "acked" && c.Delivery.MaxPending > 0 && c.Buffer.MaxRecords <= c.Delivery.MaxPending {
		conflict("buffer.max_records", "delivery.max_pending", "buffer.max_records (%d%s) must exceed delivery.max_pending (%d%s)",
			c.Buffer.MaxRecords, c.defaultNote("buffer.max_records"), c.Delivery.MaxPending, c.defaultNote("delivery.max_pending"))
	}
	return errors.Join(errs...)
}

// defaultNote is ", the default" for a key Load did not set.
func (c Config) defaultNote(key string) string {
	if _, ok := c.origin[key]; ok || c.origin == nil {
		return ""
	}
	return ", the default"
}

// Warnings lists settings that are valid but do nothing or probably not what was meant.
func (c Config) Warnings() []Warning {
	var w []Warning
	if !c.Ingesting() {
		w = append(w, Warning{"ingest", "no ingest source is configured (ingest.http.listen, ingest.statsd.listen, ingest.scrape.targets, ingest.host.enabled, ingest.otlp.listen): the daemon will deliver nothing"})
	}
	if c.Brain.Mode == "acked" && c.Spill.Dir == "" {
		w = append(w, Warning{"spill.dir", "acked mode without a spill directory keeps unacknowledged records in RAM only: a restart loses them and starts a new source id"})
	}
	if c.Brain.Transport != "otlp" && c.OTLP.Endpoint != "" {
		w = append(w, Warning{"brain.transport", "is erlang: the otlp.* settings are ignored (set brain.transport: otlp to deliver to otlp.endpoint)"})
	}
	if c.Brain.Transport == "otlp" && c.TLS.Enabled {
		w = append(w, Warning{"tls.enabled", "tls.* is Erlang distribution's TLS, not used with brain.transport otlp (see otlp.tls.*)"})
	}
	if c.Brain.Transport == "otlp" && c.OTLP.TLS.InsecureSkipVerify {
		w = append(w, Warning{"otlp.tls.insecure_skip_verify", "the OTLP receiver's certificate is not verified: anyone on the path can pose as the receiver"})
	}
	if c.TLS.Enabled && c.TLS.InsecureSkipVerify {
		w = append(w, Warning{"tls.insecure_skip_verify", "the Brain's certificate is not verified: anyone on the path can pose as the Brain"})
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "" || c.TLS.ServerName != "") {
		w = append(w, Warning{"tls.enabled", "is false: the other tls.* settings are ignored"})
	}
	if c.Spill.Dir == "" && c.Spill.Overflow == "refuse" {
		w = append(w, Warning{"spill.overflow", "refuse has no effect without spill.dir"})
	}
	if c.Buffer.Overflow == "refuse" && c.Spill.Dir != "" {
		w = append(w, Warning{"buffer.overflow", "refuse has no effect with spill.dir: the ring spills to disk, and spill.overflow applies"})
	}
	if c.Buffer.Overflow == "refuse" && c.Spill.Dir == "" && c.Brain.Mode == "acked" {
		w = append(w, Warning{"buffer.overflow", "refuse has no effect in acked mode: its RAM log refuses records when full (counted in pharos_fsm_dropped_total)"})
	}
	if len(c.Ingest.Scrape.Targets) > 0 && c.Ingest.Scrape.Timeout > c.Ingest.Scrape.Interval {
		w = append(w, Warning{"ingest.scrape.timeout", fmt.Sprintf("is longer than ingest.scrape.interval (%s): the interval bounds it", c.Ingest.Scrape.Interval)})
	}
	return w
}

// checkNodeName checks an Erlang node name: name@host, the name of letters, digits, _ and -.
func checkNodeName(n string) error {
	name, host, ok := strings.Cut(n, "@")
	if !ok || name == "" || host == "" {
		return fmt.Errorf("must be name@host, got %q", n)
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("the name part of %q may hold letters, digits, _ and - only", n)
		}
	}
	if strings.ContainsAny(host, "@ /") {
		return fmt.Errorf("the host part of %q is not a host name", n)
	}
	return nil
}

// checkAddr checks a host:port address (the host may be empty: every interface).
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not host:port: %q", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port in %q", addr)
	}
	return nil
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// zeroText prints a non-positive value in its unit.
func zeroText(arg string, v int64) string {
	switch arg {
	case "DURATION":
		return Duration(v).String()
	case "SIZE":
		return strconv.FormatInt(v, 10) + " bytes"
	}
	return strconv.FormatInt(v, 10)
}

// validateCluster checks the brain.* keys of a cluster (docs/clusters.md).
func (c Config) validateCluster(bad func(key, format string, args ...any)) {
	b := c.Brain
	if b.Node != "" {
		bad("brain.node", "names one Brain; a cluster is brain.targets or brain.discovery: set one or the other")
	}
	if b.Addr != "" {
		bad("brain.addr", "applies to brain.node only, not to a cluster")
	}
	if len(b.Targets) > 0 && b.Discovery != "" {
		bad("brain.targets", "and brain.discovery both name the Brains: set one")
	}
	seen := map[string]bool{}
	for _, t := range b.Targets {
		node, name, found := strings.Cut(t, "/")
		if err := checkNodeName(node); err != nil {
			bad("brain.targets", "%q: %v", t, err)
			continue
		}
		if found && (name == "" || strings.ContainsAny(name, " @'\"/")) {
			bad("brain.targets", "%q: the registered name after / must be an atom such as pharos_brain", t)
		}
		if !found {
			t += "/" + b.Name
		}
		if seen[t] {
			bad("brain.targets", "%q is listed twice", t)
		}
		seen[t] = true
	}
	if b.Discovery != "" {
		if b.Discovery != "pg" {
			bad("brain.discovery", "must be pg (or empty), got %q", b.Discovery)
		}
		if len(b.Seeds) == 0 {
			bad("brain.seeds", "is required with brain.discovery pg: Brain nodes to ask for the group")
		}
		for _, s := range b.Seeds {
			if err := checkNodeName(s); err != nil {
				bad("brain.seeds", "%q: %v", s, err)
			}
		}
		if b.PG.Scope == "" || b.PG.Group == "" || strings.ContainsAny(b.PG.Scope+b.PG.Group, " @'\"") {
			bad("brain.pg.scope", "scope %q and group %q must be atoms", b.PG.Scope, b.PG.Group)
		}
		if b.PG.PollInterval <= 0 {
			bad("brain.pg.poll_interval", "must be positive, got %v", b.PG.PollInterval)
		}
	}
	if b.Routing != "failover" && b.Routing != "shard" {
		bad("brain.routing", "must be failover or shard, got %q", b.Routing)
	}
	if k := b.Shard.Key; k != "source" && k != "name" && !(strings.HasPrefix(k, "tag:") && len(k) > len("tag:")) {
		bad("brain.shard.key", "must be source, name or tag:KEY, got %q", k)
	}
	if b.Shard.Count < 0 || b.Shard.Count > 1024 {
		bad("brain.shard.count", "must be 0 (automatic) to 1024, got %d", b.Shard.Count)
	}
	if b.Ready != "any" && b.Ready != "quorum" && b.Ready != "all" {
		bad("brain.ready", "must be any, quorum or all, got %q", b.Ready)
	}
	if b.HealthInterval <= 0 {
		bad("brain.health_interval", "must be positive, got %v", b.HealthInterval)
	}
}

// validateOTLP checks the OTLP transport's settings (brain.transport otlp) and what it excludes:
// a mode other than payload (term and subject are Erlang framings; acked needs the Brain's
// acknowledgements), the Brain's queue limit.
func (c Config) validateOTLP(set func(string) bool) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Source: c.origin[key], Reason: fmt.Sprintf(format, args...)})
	}
	o := c.OTLP
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("otlp.endpoint", "not an http(s) URL with a host: %q", o.Endpoint)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			bad("otlp.endpoint", "must have no query, fragment or user info: %q (headers go in otlp.headers, a token in otlp.token_file)", o.Endpoint)
		}
	}
	for i, h := range o.Headers {
		if k, _, ok := strings.Cut(h, "="); !ok || strings.TrimSpace(k) == "" {
			bad("otlp.headers", "item %d: want key=value, got %q", i, h)
		}
	}
	if (o.TLS.CertFile == "") != (o.TLS.KeyFile == "") {
		if o.TLS.CertFile == "" {
			bad("otlp.tls.cert_file", "is required with otlp.tls.key_file")
		} else {
			bad("otlp.tls.key_file", "is required with otlp.tls.cert_file")
		}
	}
	if c.Brain.Transport != "otlp" {
		return errs
	}
	if o.Endpoint == "" {
		bad("otlp.endpoint", "is required with brain.transport otlp (e.g. http://127.0.0.1:4318)")
	}
	if c.Brain.Mode != "payload" {
		key := "brain.mode"
		if !set(key) {
			key = "brain.transport"
		}
		bad(key, "brain.mode %s does not apply to brain.transport otlp: an OTLP receiver answers each request (no acked mode) and takes no Erlang framing; use payload", c.Brain.Mode)
	}
	// The default applies to the Brain alone; a value set for otlp is a mistake.
	if c.Brain.QueueLimit != 0 && c.Brain.QueueLimit != Default().Brain.QueueLimit {
		bad("brain.queue_limit", "is the Brain's mailbox limit: not with brain.transport otlp (the receiver answers 429 or 503)")
	}
	return errs
}
