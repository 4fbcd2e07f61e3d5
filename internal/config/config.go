package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("config: invalid")

// KeyError names the setting that is wrong and where it came from.
type KeyError struct {
	Key    string // key path, e.g. brain.node
	Source string // "file FILE", "env PHAROS_X", "flag --x" or "" for a combination
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

// Config is every setting of `pharos-node run`. The yaml tags are the key paths.
type Config struct {
	Node     Node     `yaml:"node"`
	Brain    Brain    `yaml:"brain"`
	TLS      TLS      `yaml:"tls"`
	Buffer   Buffer   `yaml:"buffer"`
	Spill    Spill    `yaml:"spill"`
	Delivery Delivery `yaml:"delivery"`
	Ingest   Ingest   `yaml:"ingest"`
	Admin    Admin    `yaml:"admin"`
	Log      Log      `yaml:"log"`
	// ShutdownTimeout bounds how long a stopping daemon keeps trying to deliver before it
	// spills what is left.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" help:"how long shutdown keeps delivering before spilling the rest"`
}

// Node is this Go node.
type Node struct {
	Name       string   `yaml:"name" help:"this node's name (default pharos@<host>)"`
	CookieFile string   `yaml:"cookie_file" help:"file holding the cookie when PHAROS_COOKIE is unset (default ~/.erlang.cookie)"`
	EpmdPort   int      `yaml:"epmd_port" help:"EPMD port (default ERL_EPMD_PORT or 4369)"`
	NetTick    Duration `yaml:"net_ticktime" help:"net_ticktime, as the Brain's kernel setting"`
}

// Brain is where records go.
type Brain struct {
	Node string `yaml:"node" help:"the Brain's node name, name@host"`
	Name string `yaml:"name" help:"the Brain process's registered name"`
	Addr string `yaml:"addr" help:"host:port of the Brain's distribution listener (skips EPMD)"`
	Mode string `yaml:"mode" help:"delivery mode: payload, term, subject or acked"`
	// QueueLimit is backpressure on the Brain's mailbox: above this many queued messages delivery
	// pauses and the backlog drains at the throttled pace. 0 switches the check off.
	QueueLimit int `yaml:"queue_limit" help:"pause delivery while the Brain's mailbox holds more messages than this (0: off)"`
}

// TLS configures TLS distribution (-proto_dist inet_tls on the Brain).
type TLS struct {
	Enabled            bool   `yaml:"enabled" help:"use TLS distribution"`
	CAFile             string `yaml:"ca_file" help:"CA certificates that sign the Brain's certificate"`
	CertFile           string `yaml:"cert_file" help:"this node's certificate"`
	KeyFile            string `yaml:"key_file" help:"this node's private key"`
	ServerName         string `yaml:"server_name" help:"name to verify in the Brain's certificate (default: its host)"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" help:"do not verify the Brain's certificate (testing only)"`
}

// Buffer is the RAM ring.
type Buffer struct {
	MaxRecords int      `yaml:"max_records" help:"records the RAM ring holds"`
	MaxBytes   ByteSize `yaml:"max_bytes" help:"bytes the RAM ring holds"`
}

// Spill is the disk tier.
type Spill struct {
	Dir          string   `yaml:"dir" help:"spill directory (empty: no disk tier)"`
	MaxBytes     ByteSize `yaml:"max_bytes" help:"disk the spill log may use"`
	SegmentBytes ByteSize `yaml:"segment_bytes" help:"size of one spill segment"`
	Sync         string   `yaml:"sync" help:"sync policy: always, interval or never"`
	SyncInterval Duration `yaml:"sync_interval" help:"group commit interval of the interval policy"`
	Overflow     string   `yaml:"overflow" help:"when full: drop_oldest or refuse"`
}

// Delivery tunes the connection manager.
type Delivery struct {
	BaseBackoff   Duration `yaml:"base_backoff" help:"first reconnect backoff window"`
	MaxBackoff    Duration `yaml:"max_backoff" help:"cap of the reconnect backoff"`
	MaxPending    int      `yaml:"max_pending" help:"backlog above which delivery is throttled"`
	FlushInterval Duration `yaml:"flush_interval" help:"how often the ring is drained while streaming"`
	DrainInterval Duration `yaml:"drain_interval" help:"pace of draining while throttled"`
	DrainBatch    int      `yaml:"drain_batch" help:"records per drain step"`
	BatchSize     int      `yaml:"batch_size" help:"acked mode: records per batch"`
	BatchDelay    Duration `yaml:"batch_delay" help:"acked mode: longest wait to fill a batch"`
	Window        int      `yaml:"window" help:"acked mode: batches in flight"`
	AckTimeout    Duration `yaml:"ack_timeout" help:"acked mode: a Brain silent this long counts as lost"`
}

// Ingest is how records get in.
type Ingest struct {
	Source string `yaml:"source" help:"source field of ingested records (default: host name)"`
	HTTP   HTTP   `yaml:"http"`
	StatsD StatsD `yaml:"statsd"`
	Scrape Scrape `yaml:"scrape"`
	Host   Host   `yaml:"host"`
	OTLP   OTLP   `yaml:"otlp"`
}

// HTTP ingestion: POST /v1/metrics and /v1/alerts.
type HTTP struct {
	Listen       string       `yaml:"listen" help:"address of the HTTP ingest and admin endpoints (empty: off)"`
	MaxBodyBytes ByteSize     `yaml:"max_body_bytes" help:"largest request body"`
	MaxRecords   int          `yaml:"max_records" help:"most records in one request"`
	TLS          ListenerTLS  `yaml:"tls"`
	Auth         ListenerAuth `yaml:"auth"`
}

// OTLP is the OTLP/HTTP metrics receiver (package ingest/otlp), on a listener of its own.
type OTLP struct {
	Listen       string       `yaml:"listen" help:"address of the OTLP/HTTP receiver, POST /v1/metrics (empty: off; 127.0.0.1:4318 by convention)"`
	MaxBodyBytes ByteSize     `yaml:"max_body_bytes" help:"largest OTLP request body, as sent and as inflated"`
	MaxRecords   int          `yaml:"max_records" help:"most records one OTLP request may map to"`
	ResourceTags []string     `yaml:"resource_tags" help:"resource attributes that become tags (default: all but service.name and telemetry.sdk.*)"`
	TLS          ListenerTLS  `yaml:"tls"`
	Auth         ListenerAuth `yaml:"auth"`
}

// ListenerTLS makes an HTTP listener serve TLS, and mutual TLS with a client CA file.
type ListenerTLS struct {
	CertFile     string `yaml:"cert_file" help:"PEM certificate: serve TLS (with key_file)"`
	KeyFile      string `yaml:"key_file" help:"PEM private key of cert_file"`
	ClientCAFile string `yaml:"client_ca_file" help:"PEM CAs: require client certificates they sign (mutual TLS)"`
}

// ListenerAuth makes an HTTP listener require a bearer token.
type ListenerAuth struct {
	TokenFile string `yaml:"token_file" help:"file of bearer tokens, one per line: require Authorization: Bearer <token> (reloaded on change and SIGHUP)"`
}

// StatsD ingestion over UDP.
type StatsD struct {
	Listen         string   `yaml:"listen" help:"UDP address of the StatsD listener (empty: off)"`
	MaxPacketBytes ByteSize `yaml:"max_packet_bytes" help:"largest StatsD packet"`
}

// Scrape is Prometheus scraping.
type Scrape struct {
	Targets  []string `yaml:"targets" help:"URLs of Prometheus exporters (comma separated as a flag)"`
	Interval Duration `yaml:"interval" help:"scrape interval"`
	Timeout  Duration `yaml:"timeout" help:"scrape timeout"`
}

// Host is the built-in collector of host metrics.
type Host struct {
	Enabled  bool     `yaml:"enabled" help:"collect a few host metrics (load, memory, uptime, CPU)"`
	Interval Duration `yaml:"interval" help:"host metrics interval"`
}

// Admin endpoints: /metrics, /healthz, /readyz.
type Admin struct {
	Listen string       `yaml:"listen" help:"address of /metrics, /healthz and /readyz (empty: on the HTTP ingest address)"`
	TLS    ListenerTLS  `yaml:"tls"`
	Auth   ListenerAuth `yaml:"auth"`
}

// Log configures zerolog.
type Log struct {
	Level  string `yaml:"level" help:"debug, info, warn or error"`
	Format string `yaml:"format" help:"json, console, or auto (console on a terminal)"`
}

// Default returns the settings used where nothing else is given.
func Default() Config {
	return Config{
		Node:   Node{NetTick: Duration(60 * time.Second)},
		Brain:  Brain{Name: "pharos_brain", Mode: "payload"},
		Buffer: Buffer{MaxRecords: 100_000, MaxBytes: 64 << 20},
		Spill: Spill{MaxBytes: 1 << 30, SegmentBytes: 64 << 20, Sync: "interval",
			SyncInterval: Duration(100 * time.Millisecond), Overflow: "drop_oldest"},
		Delivery: Delivery{
			BaseBackoff: Duration(time.Second), MaxBackoff: Duration(time.Minute), MaxPending: 10_000,
			FlushInterval: Duration(100 * time.Millisecond), DrainInterval: Duration(100 * time.Millisecond),
			DrainBatch: 1_000, BatchSize: 1_000, BatchDelay: Duration(10 * time.Millisecond), Window: 8,
			AckTimeout: Duration(30 * time.Second),
		},
		Ingest: Ingest{
			HTTP:   HTTP{MaxBodyBytes: 4 << 20, MaxRecords: 10_000},
			StatsD: StatsD{MaxPacketBytes: 8 << 10},
			Scrape: Scrape{Interval: Duration(15 * time.Second), Timeout: Duration(5 * time.Second)},
			Host:   Host{Interval: Duration(10 * time.Second)},
			OTLP:   OTLP{MaxBodyBytes: 16 << 20, MaxRecords: 100_000},
		},
		Log:             Log{Level: "info", Format: "auto"},
		ShutdownTimeout: Duration(10 * time.Second),
	}
}

// Load builds the configuration: defaults, then the file named by --config (if any), then PHAROS_*
// variables from environ, then the flags in args, and validates the result.
func Load(args []string, environ []string, readFile func(string) ([]byte, error)) (Config, error) {
	cfg := Default()
	fields := settings(&cfg)

	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "YAML configuration file")
	given := make([]*flagValue, 0, len(fields))
	for _, f := range fields {
		fv := &flagValue{f: f}
		given = append(given, fv)
		fs.Var(fv, f.key, f.help)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, &KeyError{Key: "flags", Reason: err.Error()}
	}
	if fs.NArg() > 0 {
		return Config{}, &KeyError{Key: "flags", Reason: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *configFile != "" {
		data, err := readFile(*configFile)
		if err != nil {
			return Config{}, &KeyError{Key: "config", Source: "flag --config", Reason: err.Error()}
		}
		if err := decodeYAML(data, &cfg, *configFile); err != nil {
			return Config{}, err
		}
	}
	byEnv := map[string]*setting{}
	for _, f := range fields {
		byEnv[f.env] = f
	}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "PHAROS_") || ignoredEnv(name) {
			continue
		}
		f, known := byEnv[name]
		if !known {
			return Config{}, &KeyError{Key: name, Source: "env " + name, Reason: "unknown setting"}
		}
		if err := f.set(value); err != nil {
			return Config{}, &KeyError{Key: f.key, Source: "env " + name, Reason: err.Error()}
		}
	}
	for _, fv := range given {
		if !fv.given {
			continue
		}
		if err := fv.f.set(fv.raw); err != nil {
			return Config{}, &KeyError{Key: fv.f.key, Source: "flag --" + fv.f.key, Reason: err.Error()}
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// ignoredEnv reports the PHAROS_ variables that are not settings.
func ignoredEnv(name string) bool {
	switch name {
	case "PHAROS_COOKIE", "PHAROS_OTP", "PHAROS_OTP_CACHE", "PHAROS_EPMD_PORT":
		return true
	}
	return false
}

// Usage writes every setting with its flag, variable and default.
func Usage(w io.Writer) {
	cfg := Default()
	fmt.Fprintln(w, "  --config FILE  YAML configuration file (flags win over PHAROS_* variables, which win over the file)")
	for _, f := range settings(&cfg) {
		fmt.Fprintf(w, "  --%s (%s)  %s (default %s)\n", f.key, f.env, f.help, f.String())
	}
}

func decodeYAML(data []byte, cfg *Config, file string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return &KeyError{Key: yamlKey(te.Errors[0]), Source: "file " + file, Reason: strings.Join(te.Errors, "; ")}
		}
		return &KeyError{Key: "config", Source: "file " + file, Reason: err.Error()}
	}
	return nil
}

// yamlKey extracts the field name from a yaml.v3 error such as
// "line 3: field bogus not found in type config.Brain".
func yamlKey(msg string) string {
	if _, rest, ok := strings.Cut(msg, "field "); ok {
		if name, _, ok := strings.Cut(rest, " "); ok {
			return name
		}
	}
	return "config"
}

// Validate refuses impossible values, naming the key.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &KeyError{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	if c.Brain.Node == "" && c.Brain.Addr == "" {
		return bad("brain.node", "is required (name@host), or brain.addr with brain.node")
	}
	if c.Brain.Node != "" && !strings.Contains(c.Brain.Node, "@") {
		return bad("brain.node", "must be name@host, got %q", c.Brain.Node)
	}
	if c.Brain.Name == "" {
		return bad("brain.name", "is required")
	}
	switch c.Brain.Mode {
	case "payload", "term", "subject", "acked":
	default:
		return bad("brain.mode", "must be payload, term, subject or acked, got %q", c.Brain.Mode)
	}
	switch c.Spill.Sync {
	case "always", "interval", "never":
	default:
		return bad("spill.sync", "must be always, interval or never, got %q", c.Spill.Sync)
	}
	switch c.Spill.Overflow {
	case "drop_oldest", "refuse":
	default:
		return bad("spill.overflow", "must be drop_oldest or refuse, got %q", c.Spill.Overflow)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console", "auto":
	default:
		return bad("log.format", "must be json, console or auto, got %q", c.Log.Format)
	}
	if c.TLS.Enabled && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls.cert_file", "and tls.key_file go together")
	}
	if c.Brain.QueueLimit < 0 {
		return bad("brain.queue_limit", "must be 0 (off) or positive, got %d", c.Brain.QueueLimit)
	}
	if c.Node.EpmdPort < 0 || c.Node.EpmdPort > 65535 {
		return bad("node.epmd_port", "must be a port number, got %d", c.Node.EpmdPort)
	}
	positives := []struct {
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
		{"ingest.http.max_body_bytes", int64(c.Ingest.HTTP.MaxBodyBytes)}, {"ingest.http.max_records", int64(c.Ingest.HTTP.MaxRecords)},
		{"ingest.statsd.max_packet_bytes", int64(c.Ingest.StatsD.MaxPacketBytes)},
		{"ingest.scrape.interval", int64(c.Ingest.Scrape.Interval)}, {"ingest.scrape.timeout", int64(c.Ingest.Scrape.Timeout)},
		{"ingest.host.interval", int64(c.Ingest.Host.Interval)}, {"node.net_ticktime", int64(c.Node.NetTick)},
		{"ingest.otlp.max_body_bytes", int64(c.Ingest.OTLP.MaxBodyBytes)}, {"ingest.otlp.max_records", int64(c.Ingest.OTLP.MaxRecords)},
		{"shutdown_timeout", int64(c.ShutdownTimeout)},
	}
	for _, p := range positives {
		if p.v <= 0 {
			return bad(p.key, "must be positive, got %d", p.v)
		}
	}
	if c.Delivery.MaxBackoff < c.Delivery.BaseBackoff {
		return bad("delivery.max_backoff", "must be at least delivery.base_backoff (%s)", c.Delivery.BaseBackoff)
	}
	if c.Ingest.StatsD.MaxPacketBytes > 65535 {
		return bad("ingest.statsd.max_packet_bytes", "must be at most 65535 (a UDP datagram), got %d", c.Ingest.StatsD.MaxPacketBytes)
	}
	for _, lt := range []struct {
		prefix string
		l      ListenerTLS
	}{{"ingest.http.tls", c.Ingest.HTTP.TLS}, {"ingest.otlp.tls", c.Ingest.OTLP.TLS}, {"admin.tls", c.Admin.TLS}} {
		prefix, l := lt.prefix, lt.l
		if (l.CertFile == "") != (l.KeyFile == "") {
			return bad(prefix+".cert_file", "and %s.key_file go together", prefix)
		}
		if l.ClientCAFile != "" && l.CertFile == "" {
			return bad(prefix+".client_ca_file", "needs %s.cert_file and %s.key_file", prefix, prefix)
		}
	}
	if c.Spill.SegmentBytes > c.Spill.MaxBytes {
		return bad("spill.segment_bytes", "must not exceed spill.max_bytes (%s)", c.Spill.MaxBytes)
	}
	return nil
}

// setting is one leaf of Config, reached by reflection (start-up only, never on a hot path).
type setting struct {
	key, env, help string
	v              reflect.Value
}

func settings(cfg *Config) []*setting {
	var out []*setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			fv := v.Field(i)
			if sf.Type.Kind() == reflect.Struct {
				walk(fv, key)
				continue
			}
			env := "PHAROS_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(key))
			out = append(out, &setting{key: key, env: env, help: sf.Tag.Get("help"), v: fv})
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func (s *setting) String() string {
	switch x := s.v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case fmt.Stringer:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

func (s *setting) set(text string) error {
	switch p := s.v.Addr().Interface().(type) {
	case *string:
		*p = text
	case *int:
		n, err := strconv.Atoi(strings.ReplaceAll(text, "_", ""))
		if err != nil {
			return fmt.Errorf("not an integer: %q", text)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", text)
		}
		*p = b
	case *Duration:
		return p.parse(text)
	case *ByteSize:
		return p.parse(text)
	case *[]string:
		*p = nil
		for _, part := range strings.Split(text, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	default:
		return fmt.Errorf("unsupported setting type %T", p)
	}
	return nil
}

// flagValue keeps a flag's text; Load applies it after the file and the environment, so flags win.
type flagValue struct {
	f     *setting
	raw   string
	given bool
}

func (v *flagValue) String() string { return v.raw }

// Set checks the text by parsing it into a scratch value and keeps it for Load.
func (v *flagValue) Set(text string) error {
	scratch := setting{v: reflect.New(v.f.v.Type()).Elem()}
	if err := scratch.set(text); err != nil {
		return err
	}
	v.raw, v.given = text, true
	return nil
}

// IsBoolFlag lets boolean settings be given as a bare --key.
func (v *flagValue) IsBoolFlag() bool { return v.f.v.Kind() == reflect.Bool }

// CookieFromEnv returns the Erlang cookie: PHAROS_COOKIE, else the cookie file (default
// ~/.erlang.cookie), which must not be readable by group or others (as erl demands).
func CookieFromEnv(getenv func(string) string, cookieFile string, stat func(string) (os.FileInfo, error), readFile func(string) ([]byte, error)) (string, error) {
	if c := getenv("PHAROS_COOKIE"); c != "" {
		return c, nil
	}
	if cookieFile == "" {
		home := getenv("HOME")
		if home == "" {
			return "", &KeyError{Key: "node.cookie_file", Reason: "no PHAROS_COOKIE, and HOME is unset"}
		}
		cookieFile = home + "/.erlang.cookie"
	}
	info, err := stat(cookieFile)
	if err != nil {
		return "", &KeyError{Key: "node.cookie_file", Reason: fmt.Sprintf("no PHAROS_COOKIE and cannot read the cookie file: %v", err)}
	}
	if info.Mode().Perm()&0o077 != 0 {
		return "", &KeyError{Key: "node.cookie_file", Reason: fmt.Sprintf("%s is accessible by others (mode %v); chmod 400 it", cookieFile, info.Mode().Perm())}
	}
	data, err := readFile(cookieFile)
	if err != nil {
		return "", &KeyError{Key: "node.cookie_file", Reason: err.Error()}
	}
	cookie := strings.TrimSpace(string(data))
	if cookie == "" {
		return "", &KeyError{Key: "node.cookie_file", Reason: cookieFile + " is empty"}
	}
	return cookie, nil
}
