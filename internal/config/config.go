package config

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("config: invalid")

// KeyError names the setting that is wrong and where it came from.
type KeyError struct {
	Key    string // key path, e.g. brain.node
	Source string // "file FILE line N", "env PHAROS_X", "flag --x", "default" or "" when several
	Reason string
}

func (e *KeyError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("config: %s (%s): %s", e.Key, e.Source, e.Reason)
	}
	return fmt.Sprintf("config: %s: %s", e.Key, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *KeyError) Unwrap() error { return ErrInvalid }

// KeyErrors returns every *KeyError in err, which may join several (Load and Validate report every
// problem they find, not only the first).
func KeyErrors(err error) []*KeyError {
	if err == nil {
		return nil
	}
	var ke *KeyError
	if errors.As(err, &ke) && ke == err {
		return []*KeyError{ke}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*KeyError
		for _, e := range j.Unwrap() {
			out = append(out, KeyErrors(e)...)
		}
		return out
	}
	if errors.As(err, &ke) {
		return []*KeyError{ke}
	}
	return nil
}

// Warning is a setting that is valid but probably not what was meant.
type Warning struct {
	Key, Message string
}

func (w Warning) String() string { return w.Key + ": " + w.Message }

// Reload classes of a setting (the reload struct tag): what a SIGHUP does with a change.
const (
	ReloadLive    = "live"    // applied to the running daemon
	ReloadRestart = "restart" // kept as it was; takes effect at the next start
	// ReloadAgent: applied to the running connection manager (agent.Reconfigure); refused and kept
	// as it was when the manager cannot take it live (a switch of confirmations on or off).
	ReloadAgent = "agent"
)

// Config is every setting of `pharos-node run`. The yaml tags are the key paths; help is the
// text of --help and docs/configuration.md; def describes a default that is computed at start;
// arg names the flag's value; reload is the setting's reload class (default restart).
type Config struct {
	Node     Node     `yaml:"node"`
	Brain    Brain    `yaml:"brain"`
	OTLP     OTLPSink `yaml:"otlp"`
	TLS      TLS      `yaml:"tls"`
	Buffer   Buffer   `yaml:"buffer"`
	Spill    Spill    `yaml:"spill"`
	Delivery Delivery `yaml:"delivery"`
	Ingest   Ingest   `yaml:"ingest"`
	Admin    Admin    `yaml:"admin"`
	Log      Log      `yaml:"log"`
	// ShutdownTimeout bounds how long a stopping daemon keeps trying to deliver before it
	// spills what is left.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" reload:"live" help:"how long shutdown keeps delivering before spilling the rest"`

	// origin maps each key Load set to where it came from (for errors and config check).
	origin map[string]string
}

// Origin tells where Load took key's value from: "file F line N", "env PHAROS_X", "flag --x",
// or "default".
func (c Config) Origin(key string) string {
	if o, ok := c.origin[key]; ok {
		return o
	}
	return "default"
}

// Node is this Go node.
type Node struct {
	Name       string   `yaml:"name" arg:"NAME@HOST" def:"pharos@<host name>" help:"this node's name"`
	CookieFile string   `yaml:"cookie_file" arg:"FILE" def:"~/.erlang.cookie" help:"file holding the cookie when PHAROS_COOKIE is unset; mode 0400 or 0600"`
	EpmdPort   int      `yaml:"epmd_port" arg:"PORT" def:"ERL_EPMD_PORT, else 4369" help:"EPMD port"`
	NetTick    Duration `yaml:"net_ticktime" help:"net_ticktime, as the Brain's kernel setting"`
}

// Brain is where records go.
type Brain struct {
	// Transport: erlang (the Brain, over Erlang distribution) or otlp (an OTLP/HTTP receiver,
	// the otlp.* settings; brain.node, the cookie and tls.* are then not used).
	Transport string `yaml:"transport" arg:"NAME" help:"where records go: erlang (the Brain, over Erlang distribution) or otlp (an OTLP/HTTP receiver such as an OpenTelemetry Collector: otlp.*)"`

	Node string `yaml:"node" arg:"NAME@HOST" help:"the Brain's node name (required with brain.transport erlang, unless a cluster: brain.targets or brain.discovery)"`
	Name string `yaml:"name" arg:"NAME" help:"the Brain process's registered name (in a cluster: that of each target without /NAME)"`
	Addr string `yaml:"addr" arg:"HOST:PORT" help:"the Brain's distribution listener; skips EPMD"`
	Mode string `yaml:"mode" arg:"MODE" help:"delivery mode: payload, term, subject or acked (payload only with brain.transport otlp)"`
	// QueueLimit is backpressure on the Brain's mailbox: delivery never takes it above this many
	// queued messages and pauses (Throttled) at the limit. 0 switches the check off.
	QueueLimit int `yaml:"queue_limit" help:"most messages delivery lets wait in the Brain's mailbox; delivery pauses at the limit (0: off)"`

	// A cluster of Brains (docs/clusters.md), in place of brain.node: a static list, or the
	// members of a pg group asked of seed nodes.
	Targets        []string `yaml:"targets" arg:"NODE[/NAME],..." def:"none" help:"a cluster of Brains, in place of brain.node: NODE or NODE/NAME each (NAME defaults to brain.name; a YAML list, comma separated as a flag)"`
	Discovery      string   `yaml:"discovery" arg:"MODE" def:"none" help:"pg: find the Brains in a pg group by asking brain.seeds, in place of brain.node"`
	Seeds          []string `yaml:"seeds" arg:"NODE,..." def:"none" help:"with brain.discovery pg: Brain nodes to ask for the group, in turn"`
	PG             PG       `yaml:"pg"`
	Routing        string   `yaml:"routing" arg:"ROUTING" help:"with a cluster: failover (every record to the first live Brain) or shard (spread by a key)"`
	Shard          Shard    `yaml:"shard"`
	Ready          string   `yaml:"ready" arg:"POLICY" help:"with a cluster, /readyz is ready while any, a quorum of, or all Brains are reachable"`
	HealthInterval Duration `yaml:"health_interval" help:"with a cluster: how often each Brain is probed"`
}

// PG is discovery through a pg group.
type PG struct {
	Scope        string   `yaml:"scope" arg:"NAME" help:"the pg scope the Brains start"`
	Group        string   `yaml:"group" arg:"NAME" help:"the pg group the Brain processes join"`
	Poll         bool     `yaml:"poll" help:"ask for the members every poll_interval instead of following pg:monitor/2 (automatic on OTP 25.0)"`
	PollInterval Duration `yaml:"poll_interval" help:"how often the members are asked for when polling"`
}

// Shard is the shard routing.
type Shard struct {
	Key   string `yaml:"key" arg:"KEY" help:"what routing shard hashes: source, name, or tag:KEY"`
	Count int    `yaml:"count" def:"32 with routing shard, 1 with failover" help:"virtual shards, each with its own connection manager (and, acked, its own log and SourceId); fixed for a spill directory while it holds records"`
}

// OTLPSink is the OTLP transport (brain.transport otlp, package otlpsink): records go to an
// OTLP/HTTP receiver, through the same connection manager, ring and spill directory.
type OTLPSink struct {
	Endpoint            string        `yaml:"endpoint" arg:"URL" help:"base URL of the OTLP/HTTP receiver, e.g. http://127.0.0.1:4318 (/v1/metrics and /v1/logs are appended); required with brain.transport otlp"`
	Headers             []string      `yaml:"headers" arg:"KEY=VALUE,..." def:"none" help:"headers sent with every request (a YAML list of key=value; config check prints them: put secrets in otlp.token_file)"`
	TokenFile           string        `yaml:"token_file" arg:"FILE" help:"file holding a bearer token, sent as Authorization: Bearer (read at start, never logged)"`
	Timeout             Duration      `yaml:"timeout" help:"longest wait for one request's answer (also the connection manager's connect and delivery deadline)"`
	Compression         string        `yaml:"compression" arg:"NAME" help:"request body compression: gzip or none"`
	MaxPointsPerRequest int           `yaml:"max_points_per_request" help:"data points (or log records) in one request; this many waiting are sent at once, fewer at the next delivery.flush_interval"`
	MaxRetryAfter       Duration      `yaml:"max_retry_after" help:"longest wait a Retry-After answer (429, 503) can impose"`
	Temporality         string        `yaml:"temporality" arg:"NAME" help:"aggregation temporality of the Sum points counter records become: cumulative or delta"`
	TLS                 OTLPClientTLS `yaml:"tls"`
}

// OTLPClientTLS is the OTLP transport's TLS, for an https endpoint.
type OTLPClientTLS struct {
	CAFile             string `yaml:"ca_file" arg:"FILE" def:"the system's roots" help:"PEM CA certificates that sign the OTLP receiver's certificate"`
	CertFile           string `yaml:"cert_file" arg:"FILE" help:"PEM client certificate, for a receiver that verifies clients (with otlp.tls.key_file)"`
	KeyFile            string `yaml:"key_file" arg:"FILE" help:"PEM private key of otlp.tls.cert_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" help:"do not verify the OTLP receiver's certificate (testing only)"`
}

// TLS configures TLS distribution (-proto_dist inet_tls on the Brain).
type TLS struct {
	Enabled            bool   `yaml:"enabled" help:"use TLS distribution (the Brain runs -proto_dist inet_tls)"`
	CAFile             string `yaml:"ca_file" arg:"FILE" def:"the system's roots" help:"PEM CA certificates that sign the Brain's certificate"`
	CertFile           string `yaml:"cert_file" arg:"FILE" help:"PEM certificate of this node (when the Brain verifies peers)"`
	KeyFile            string `yaml:"key_file" arg:"FILE" help:"PEM private key of tls.cert_file"`
	ServerName         string `yaml:"server_name" arg:"NAME" def:"the host of brain.node" help:"name to verify in the Brain's certificate"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" help:"do not verify the Brain's certificate (testing only)"`
}

// Buffer is the RAM ring.
type Buffer struct {
	MaxRecords int      `yaml:"max_records" help:"records the RAM ring holds"`
	MaxBytes   ByteSize `yaml:"max_bytes" help:"bytes the RAM ring holds"`
	// Overflow is what a full ring does without a spill directory: drop its oldest records
	// (counted in pharos_fsm_dropped_total) or refuse new ones (HTTP 429, StatsD drops counted).
	Overflow string `yaml:"overflow" arg:"POLICY" help:"when RAM is full and there is no spill.dir: drop_oldest, or refuse new records (HTTP answers 429 with Retry-After)"`
}

// Spill is the disk tier.
type Spill struct {
	Dir          string   `yaml:"dir" arg:"DIR" def:"none: no disk tier" help:"spill directory"`
	MaxBytes     ByteSize `yaml:"max_bytes" help:"disk the spill log may use"`
	SegmentBytes ByteSize `yaml:"segment_bytes" help:"size of one spill segment (at most spill.max_bytes)"`
	Sync         string   `yaml:"sync" arg:"POLICY" help:"sync policy: always, interval or never"`
	SyncInterval Duration `yaml:"sync_interval" help:"group commit interval of the interval policy"`
	Overflow     string   `yaml:"overflow" arg:"POLICY" help:"when full: drop_oldest or refuse"`
}

// Delivery tunes the connection manager.
type Delivery struct {
	BaseBackoff Duration `yaml:"base_backoff" reload:"agent" help:"first reconnect backoff window"`
	MaxBackoff  Duration `yaml:"max_backoff" reload:"agent" help:"cap of the reconnect backoff"`
	// ProbeInterval and ProbeSpread: while disconnected, a cheap check (an EPMD lookup) whether the
	// Brain is back, so that a long backoff does not keep the daemon away from a returned Brain.
	ProbeInterval Duration `yaml:"probe_interval" reload:"agent" help:"while disconnected, look up the Brain in EPMD about this often (jittered) and reconnect soon once it is back; 0s: off"`
	ProbeSpread   Duration `yaml:"probe_spread" reload:"agent" help:"once a probe finds the Brain back, reconnect within a random delay of at most this (spreads a fleet)"`
	MaxPending    int      `yaml:"max_pending" reload:"agent" help:"backlog above which delivery is throttled"`
	FlushInterval Duration `yaml:"flush_interval" reload:"agent" help:"how often the ring is drained while streaming"`
	DrainInterval Duration `yaml:"drain_interval" reload:"agent" help:"pace of draining while throttled"`
	DrainBatch    int      `yaml:"drain_batch" reload:"agent" help:"records per drain step"`
	BatchSize     int      `yaml:"batch_size" reload:"agent" help:"acked mode: records per batch"`
	BatchDelay    Duration `yaml:"batch_delay" reload:"agent" help:"acked mode: longest wait to fill a batch"`
	Window        int      `yaml:"window" reload:"agent" help:"acked mode: batches in flight"`
	AckTimeout    Duration `yaml:"ack_timeout" reload:"agent" help:"acked mode: a Brain silent this long counts as lost"`
	// Delivery confirmations of the payload, term and subject modes.
	ConfirmInterval   Duration `yaml:"confirm_interval" reload:"agent" help:"payload/term/subject: longest wait before a round trip confirms delivered records in the Brain's mailbox; 0s: no confirmations"`
	ConfirmRecords    int      `yaml:"confirm_records" reload:"agent" help:"payload/term/subject: records that start a confirmation round trip at once"`
	MaxUnconfirmed    int      `yaml:"max_unconfirmed" reload:"agent" help:"payload/term/subject: records delivered and not yet confirmed, at most"`
	ConfirmTimeout    Duration `yaml:"confirm_timeout" reload:"agent" help:"payload/term/subject: an unanswered round trip this old counts as a lost connection"`
	RestartIntensity  int      `yaml:"restart_intensity" help:"connection manager restarts (after a crash) within restart_period before the daemon gives up and exits 1"`
	RestartPeriod     Duration `yaml:"restart_period" help:"the window of restart_intensity (whole seconds)"`
	ResendUnconfirmed bool     `yaml:"resend_unconfirmed" reload:"agent" help:"payload/term/subject: resend what a drop left unconfirmed (at least once) instead of counting it as possibly lost (at most once)"`
}

// Ingest is how records get in.
type Ingest struct {
	Source string `yaml:"source" arg:"NAME" def:"the host name" reload:"live" help:"source field of ingested records"`
	HTTP   HTTP   `yaml:"http"`
	StatsD StatsD `yaml:"statsd"`
	Scrape Scrape `yaml:"scrape"`
	Host   Host   `yaml:"host"`
	OTLP   OTLP   `yaml:"otlp"`
}

// HTTP ingestion: POST /v1/metrics and /v1/alerts.
type HTTP struct {
	Listen       string   `yaml:"listen" arg:"HOST:PORT" def:"off" reload:"live" help:"address of the HTTP ingest (and admin) endpoints"`
	MaxBodyBytes ByteSize `yaml:"max_body_bytes" reload:"live" help:"largest request body"`
	MaxRecords   int      `yaml:"max_records" reload:"live" help:"most records in one request"`
	// MaxInflightBytes bounds the request bodies all HTTP requests hold at once (ingest.HTTPOptions).
	MaxInflightBytes ByteSize     `yaml:"max_inflight_bytes" reload:"live" help:"request bodies held at once by all HTTP requests; a request over it gets 429 with Retry-After"`
	BodyTimeout      Duration     `yaml:"body_timeout" reload:"live" help:"longest wait for one request body (408 after it)"`
	TLS              ListenerTLS  `yaml:"tls"`
	Auth             ListenerAuth `yaml:"auth"`
}

// OTLP is the OTLP/HTTP metrics receiver (package ingest/otlp), on a listener of its own.
type OTLP struct {
	Listen       string       `yaml:"listen" arg:"HOST:PORT" def:"off" reload:"live" help:"address of the OTLP/HTTP metrics receiver, POST /v1/metrics (127.0.0.1:4318 by convention)"`
	MaxBodyBytes ByteSize     `yaml:"max_body_bytes" reload:"live" help:"largest OTLP request body, as sent and as inflated"`
	MaxRecords   int          `yaml:"max_records" reload:"live" help:"most records one OTLP request may map to"`
	ResourceTags []string     `yaml:"resource_tags" arg:"KEY,..." def:"all but service.name and telemetry.sdk.*" reload:"live" help:"resource attributes that become tags (a YAML list; [] for none)"`
	TLS          ListenerTLS  `yaml:"tls"`
	Auth         ListenerAuth `yaml:"auth"`
}

// ListenerTLS makes an HTTP listener serve TLS, and mutual TLS with a client CA file. The files
// are read again on SIGHUP and when they change; the keys themselves take effect at a restart.
type ListenerTLS struct {
	CertFile     string `yaml:"cert_file" arg:"FILE" help:"PEM certificate: the listener serves TLS (with key_file)"`
	KeyFile      string `yaml:"key_file" arg:"FILE" help:"PEM private key of cert_file"`
	ClientCAFile string `yaml:"client_ca_file" arg:"FILE" help:"PEM CAs: clients need a certificate they sign (mutual TLS)"`
}

// ListenerAuth makes an HTTP listener require a bearer token.
type ListenerAuth struct {
	TokenFile string `yaml:"token_file" arg:"FILE" help:"bearer tokens, one per line: requests need Authorization: Bearer <token> (read again on SIGHUP and on change)"`
}

// StatsD ingestion over UDP.
type StatsD struct {
	Listen         string   `yaml:"listen" arg:"HOST:PORT" def:"off" reload:"live" help:"UDP address of the StatsD listener"`
	MaxPacketBytes ByteSize `yaml:"max_packet_bytes" reload:"live" help:"largest StatsD packet"`
	FlushInterval  Duration `yaml:"flush_interval" reload:"live" help:"how often the counts of StatsD sets (|s) are sent"`
	MaxSeries      int      `yaml:"max_series" reload:"live" help:"StatsD gauges remembered for +N/-N changes, and sets counted per interval"`
}

// Scrape is Prometheus scraping.
type Scrape struct {
	Targets  []string `yaml:"targets" arg:"URL,..." def:"none" reload:"live" help:"URLs of Prometheus exporters (a YAML list; comma separated as a flag)"`
	Interval Duration `yaml:"interval" reload:"live" help:"scrape interval"`
	Timeout  Duration `yaml:"timeout" reload:"live" help:"scrape timeout (at most the interval)"`
}

// Host is the built-in collector of host metrics.
type Host struct {
	Enabled  bool     `yaml:"enabled" reload:"live" help:"collect a few host metrics (load, memory, uptime, CPU)"`
	Interval Duration `yaml:"interval" reload:"live" help:"host metrics interval"`
}

// Admin endpoints: /metrics, /healthz, /readyz.
type Admin struct {
	Listen string       `yaml:"listen" arg:"HOST:PORT" def:"on ingest.http.listen" reload:"live" help:"address of /metrics, /healthz and /readyz"`
	TLS    ListenerTLS  `yaml:"tls"`
	Auth   ListenerAuth `yaml:"auth"`
}

// Log configures zerolog.
type Log struct {
	Level  string `yaml:"level" arg:"LEVEL" reload:"live" help:"debug, info, warn or error"`
	Format string `yaml:"format" arg:"FORMAT" reload:"live" help:"json, console, or auto (console on a terminal)"`
}

// Default returns the settings used where nothing else is given.
func Default() Config {
	return Config{
		Node: Node{NetTick: Duration(60 * time.Second)},
		Brain: Brain{Transport: "erlang", Name: "pharos_brain", Mode: "payload", QueueLimit: 50_000, Routing: "failover", Ready: "any",
			PG:             PG{Scope: "pharos", Group: "pharos_brains", PollInterval: Duration(5 * time.Second)},
			Shard:          Shard{Key: "source"},
			HealthInterval: Duration(time.Second)},
		Buffer: Buffer{MaxRecords: 100_000, MaxBytes: 64 << 20, Overflow: "drop_oldest"},
		Spill: Spill{MaxBytes: 1 << 30, SegmentBytes: 64 << 20, Sync: "interval",
			SyncInterval: Duration(100 * time.Millisecond), Overflow: "drop_oldest"},
		Delivery: Delivery{
			BaseBackoff: Duration(time.Second), MaxBackoff: Duration(time.Minute), MaxPending: 10_000,
			ProbeInterval: Duration(time.Second), ProbeSpread: Duration(5 * time.Second),
			FlushInterval: Duration(100 * time.Millisecond), DrainInterval: Duration(100 * time.Millisecond),
			DrainBatch: 1_000, BatchSize: 1_000, BatchDelay: Duration(10 * time.Millisecond), Window: 8,
			AckTimeout:      Duration(30 * time.Second),
			ConfirmInterval: Duration(20 * time.Millisecond), ConfirmRecords: 2_000, MaxUnconfirmed: 100_000,
			ConfirmTimeout: Duration(30 * time.Second), ResendUnconfirmed: true,
			RestartIntensity: 10, RestartPeriod: Duration(10 * time.Second),
		},
		Ingest: Ingest{
			HTTP: HTTP{MaxBodyBytes: 4 << 20, MaxRecords: 10_000, MaxInflightBytes: 64 << 20,
				BodyTimeout: Duration(10 * time.Second)},
			StatsD: StatsD{MaxPacketBytes: 8 << 10, FlushInterval: Duration(10 * time.Second), MaxSeries: 10_000},
			Scrape: Scrape{Interval: Duration(15 * time.Second), Timeout: Duration(5 * time.Second)},
			Host:   Host{Interval: Duration(10 * time.Second)},
			OTLP:   OTLP{MaxBodyBytes: 16 << 20, MaxRecords: 100_000},
		},
		OTLP: OTLPSink{Timeout: Duration(10 * time.Second), Compression: "gzip", MaxPointsPerRequest: 1000,
			MaxRetryAfter: Duration(5 * time.Minute), Temporality: "cumulative"},
		Log:             Log{Level: "info", Format: "auto"},
		ShutdownTimeout: Duration(10 * time.Second),
	}
}

// Clustered reports whether the Brains are a cluster (brain.targets or brain.discovery) rather
// than brain.node.
func (c Config) Clustered() bool { return len(c.Brain.Targets) > 0 || c.Brain.Discovery != "" }

// Ingesting reports whether any ingest source is configured.
func (c Config) Ingesting() bool {
	i := c.Ingest
	return i.HTTP.Listen != "" || i.StatsD.Listen != "" || len(i.Scrape.Targets) > 0 || i.Host.Enabled || i.OTLP.Listen != ""
}
