package otlpsink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/fsm"
)

// ErrRetryLater: the receiver asked (Retry-After) not to be sent anything before a time that
// has not come; the connection manager backs off and tries again.
var ErrRetryLater = errors.New("otlpsink: the receiver asked to retry later")

// Sink delivers records to one OTLP/HTTP receiver. It builds the connection manager's transport
// (NewTransport, once per incarnation) and holds what outlives them: the HTTP client and its
// connections, the counters, the time a Retry-After asked to wait for. Safe for concurrent use.
type Sink struct {
	opts       Options
	metricsURL string
	logsURL    string
	client     *http.Client
	counters   *counters
	log        zerolog.Logger
	now        func() time.Time

	retryAt atomic.Int64 // unix nanoseconds; no request before it

	logMu   sync.Mutex
	lastLog map[string]time.Time
}

// New checks opts, builds the HTTP client and registers the metrics. It sends nothing: the
// first transport's Connect probes the receiver.
func New(opts Options) (*Sink, error) {
	u, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c, err := newCounters(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("otlpsink: %w", err)
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     opts.TLS,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: opts.Timeout,
	}
	metricsURL, logsURL := *u, *u
	metricsURL.Path += MetricsPath
	logsURL.Path += LogsPath
	return &Sink{opts: opts, metricsURL: metricsURL.String(), logsURL: logsURL.String(),
		client: &http.Client{Transport: tr}, counters: c, log: opts.Logger, now: time.Now,
		lastLog: map[string]time.Time{}}, nil
}

// NewTransport is fsm.ActorOptions.NewTransport: a transport for one incarnation of the
// connection manager (an fsm.RequestTransport). It uses nothing of the process.
func (s *Sink) NewTransport(gen.Process) (fsm.Transport, error) {
	return &transport{s: s, enc: newEncoder(s.opts.Temporality, s.now)}, nil
}

// String names the sink for logs: "otlp http://collector:4318".
func (s *Sink) String() string { return "otlp " + s.opts.Endpoint }

// Stats returns the counters so far.
func (s *Sink) Stats() Stats { return s.counters.stats() }

// Close closes the client's idle connections; call it once the connection manager has stopped.
func (s *Sink) Close() { s.client.CloseIdleConnections() }

// retryAfter records a receiver's Retry-After (capped at MaxRetryAfter).
func (s *Sink) retryAfter(d time.Duration) {
	if d <= 0 {
		return
	}
	s.retryAt.Store(s.now().Add(min(d, s.opts.MaxRetryAfter)).UnixNano())
}

// waitRetryAfter returns once the time a Retry-After asked for has come: at once if it has,
// after waiting if it comes within half of ctx's time, else with ErrRetryLater (the manager
// backs off and asks again).
func (s *Sink) waitRetryAfter(ctx context.Context, wait bool) error {
	at := s.retryAt.Load()
	if at == 0 {
		return nil
	}
	until := time.Unix(0, at)
	left := until.Sub(s.now())
	if left <= 0 {
		return nil
	}
	deadline, ok := ctx.Deadline()
	if !wait || (ok && deadline.Sub(s.now()) < 2*left) {
		return fmt.Errorf("%w: not before %s (%s)", ErrRetryLater, until.Format(time.RFC3339Nano), left.Round(time.Millisecond))
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logAllowed limits the log lines of one kind to one per 10 s (the counters count every event).
func (s *Sink) logAllowed(kind string) bool {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	now := s.now()
	if last, ok := s.lastLog[kind]; ok && now.Sub(last) < 10*time.Second {
		return false
	}
	s.lastLog[kind] = now
	return true
}
