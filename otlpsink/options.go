package otlpsink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of Options.
const (
	DefaultMaxPoints     = 1000
	DefaultTimeout       = 10 * time.Second
	DefaultMaxRetryAfter = 5 * time.Minute
	// MetricsPath and LogsPath are appended to Options.Endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT's
	// are by the SDKs.
	MetricsPath = "/v1/metrics"
	LogsPath    = "/v1/logs"
)

// ErrInvalid is wrapped by every refusal of Options.
var ErrInvalid = errors.New("otlpsink: invalid options")

// Compression is how request bodies are encoded.
type Compression uint8

// The compressions: gzip (the default, as the Collector's exporter) or none.
const (
	CompressionGzip Compression = iota
	CompressionNone
)

// String names the compression as configuration files do.
func (c Compression) String() string {
	if c == CompressionNone {
		return "none"
	}
	return "gzip"
}

// ParseCompression reads "gzip" or "none".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "gzip":
		return CompressionGzip, nil
	case "none":
		return CompressionNone, nil
	}
	return 0, fmt.Errorf("%w: compression %q (want gzip or none)", ErrInvalid, s)
}

// Temporality is the aggregation temporality counter records are sent with.
type Temporality uint8

// The temporalities: cumulative (the default: what the Prometheus scraper and the OTLP receiver
// deliver, and what OTLP senders send by default) or delta (StatsD counters).
const (
	Cumulative Temporality = iota
	Delta
)

// String names the temporality as configuration files do.
func (t Temporality) String() string {
	if t == Delta {
		return "delta"
	}
	return "cumulative"
}

// ParseTemporality reads "cumulative" or "delta".
func ParseTemporality(s string) (Temporality, error) {
	switch s {
	case "cumulative":
		return Cumulative, nil
	case "delta":
		return Delta, nil
	}
	return 0, fmt.Errorf("%w: temporality %q (want cumulative or delta)", ErrInvalid, s)
}

// Options configure New. Endpoint is required; everything else has a default.
type Options struct {
	// Endpoint is the receiver's base URL, http or https, e.g. http://collector:4318; MetricsPath
	// and LogsPath are appended to its path.
	Endpoint string
	// Header is sent with every request (e.g. an API key); Content-Type, Content-Encoding and
	// Content-Length are the sink's own. Never logged.
	Header http.Header
	// Compression of request bodies; the default is gzip.
	Compression Compression
	// MaxPoints is the most data points (or log records) one request carries, and the backlog at
	// which the connection manager delivers at once instead of at its next flush (default
	// DefaultMaxPoints).
	MaxPoints int
	// Timeout bounds one request (default DefaultTimeout); the connection manager's deadline
	// (fsm.Config.DeliverTimeout, ConnectTimeout) bounds the whole call too.
	Timeout time.Duration
	// MaxRetryAfter caps the wait a Retry-After header asks for (default DefaultMaxRetryAfter).
	MaxRetryAfter time.Duration
	// Temporality of the Sum points counter records become (default Cumulative).
	Temporality Temporality
	// TLS is the client configuration for an https endpoint (CA, client certificate); nil uses
	// the system's roots.
	TLS *tls.Config
	// Registerer receives the pharos_otlpsink_* metrics; nil: not exported (Stats works).
	Registerer prometheus.Registerer
	// Logger; the zero value discards.
	Logger zerolog.Logger
}

// withDefaults checks o and fills in the defaults; it returns the parsed endpoint.
func (o *Options) withDefaults() (*url.URL, error) {
	u, err := ParseEndpoint(o.Endpoint)
	if err != nil {
		return nil, err
	}
	if o.MaxPoints == 0 {
		o.MaxPoints = DefaultMaxPoints
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRetryAfter == 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	switch {
	case o.MaxPoints < 0:
		return nil, fmt.Errorf("%w: MaxPoints %d", ErrInvalid, o.MaxPoints)
	case o.Timeout < 0:
		return nil, fmt.Errorf("%w: Timeout %s", ErrInvalid, o.Timeout)
	case o.MaxRetryAfter < 0:
		return nil, fmt.Errorf("%w: MaxRetryAfter %s", ErrInvalid, o.MaxRetryAfter)
	case o.Compression > CompressionNone:
		return nil, fmt.Errorf("%w: Compression %d", ErrInvalid, o.Compression)
	case o.Temporality > Delta:
		return nil, fmt.Errorf("%w: Temporality %d", ErrInvalid, o.Temporality)
	}
	for k, vs := range o.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Content-Encoding", "Content-Length":
			return nil, fmt.Errorf("%w: header %s is the sink's own", ErrInvalid, k)
		}
		if err := checkHeader(k, vs); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// ParseEndpoint checks an endpoint: an absolute http or https URL with a host, no query or
// fragment.
func ParseEndpoint(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: Endpoint is required (http://host:4318)", ErrInvalid)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: Endpoint %q: %w", ErrInvalid, s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: Endpoint %q: not an http(s) URL with a host", ErrInvalid, s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: Endpoint %q: no query, fragment or user info", ErrInvalid, s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// ParseHeaders reads "key=value" items (OTEL_EXPORTER_OTLP_HEADERS' form, one item each).
func ParseHeaders(items []string) (http.Header, error) {
	h := http.Header{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: header %q: want key=value", ErrInvalid, it)
		}
		if unescaped, err := url.PathUnescape(strings.TrimSpace(v)); err == nil {
			v = unescaped
		}
		if err := checkHeader(k, []string{v}); err != nil {
			return nil, err
		}
		h.Add(k, v)
	}
	return h, nil
}

// checkHeader refuses a header the HTTP client would refuse at every request: a name that is
// not a token, a value with control characters.
func checkHeader(k string, vs []string) error {
	if k == "" {
		return fmt.Errorf("%w: empty header name", ErrInvalid)
	}
	for _, r := range k {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return fmt.Errorf("%w: header name %q is not a token", ErrInvalid, k)
		}
	}
	for _, v := range vs {
		for _, r := range v {
			if (r < ' ' && r != '\t') || r == 0x7f {
				return fmt.Errorf("%w: header %s: control character in the value", ErrInvalid, k)
			}
		}
	}
	return nil
}
