package httpsec

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Errors of New and Reload. They name the file, never its content.
var (
	ErrConfig   = errors.New("httpsec: invalid configuration")
	ErrNoTokens = errors.New("httpsec: token file holds no token")
)

// Reasons of refusals, the values of the reason label of pharos_http_refused_total.
const (
	ReasonNoToken       = "no_token"        // no Authorization header
	ReasonBadScheme     = "bad_scheme"      // an Authorization header that is not "Bearer <token>"
	ReasonWrongToken    = "wrong_token"     // a bearer token not in the token file
	ReasonNoClientCert  = "no_client_cert"  // mTLS: the client sent no certificate
	ReasonBadClientCert = "bad_client_cert" // mTLS: its certificate does not verify against the client CAs
)

// DefaultWatchInterval is how often Watch looks at the files.
const DefaultWatchInterval = 5 * time.Second

// Options configure a Guard. All files are optional; CertFile and KeyFile go together, and
// ClientCAFile needs them.
type Options struct {
	// Listener names the listener in counters and logs (e.g. "ingest.otlp").
	Listener string
	// CertFile and KeyFile (PEM) make the listener serve TLS (1.2 and later).
	CertFile, KeyFile string
	// ClientCAFile (PEM) makes it mutual TLS: a client must present a certificate signed by one
	// of these CAs.
	ClientCAFile string
	// TokenFile holds the bearer tokens, one per line; blank lines and lines starting with #
	// are skipped. A request must carry "Authorization: Bearer <one of them>".
	TokenFile string
	// Registerer gets the counters (several guards may share one). Nil: kept, not exported.
	Registerer prometheus.Registerer
	// Logger gets refusals (at most LogBurst per LogPeriod) and reloads; never a token.
	Logger zerolog.Logger
	// Now is the clock of the log limit. Nil: time.Now.
	Now func() time.Time
}

// Log limits of refusals.
const (
	LogBurst  = 5
	LogPeriod = 10 * time.Second
)

// Guard is the TLS and the bearer-token check of one HTTP listener. Its state (tokens,
// certificate, client CAs) is replaced whole by Reload, so a request sees one or the other.
type Guard struct {
	opts    Options
	state   atomic.Pointer[state]
	refused *prometheus.CounterVec
	reloads *prometheus.CounterVec
	log     zerolog.Logger
	sampler logSampler
	mu      sync.Mutex // serialises Reload
	stamps  []fileStamp
}

// state is what the files hold.
type state struct {
	tokens  [][sha256.Size]byte
	cert    *tls.Certificate
	clients *x509.CertPool
}

// New loads the files and returns the Guard; an error names the file and the problem.
func New(o Options) (*Guard, error) {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("%w: %s: a certificate file and a key file go together", ErrConfig, o.Listener)
	}
	if o.ClientCAFile != "" && o.CertFile == "" {
		return nil, fmt.Errorf("%w: %s: a client CA file (mutual TLS) needs a certificate and key", ErrConfig, o.Listener)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &Guard{opts: o, log: o.Logger.With().Str("listener", o.Listener).Logger(),
		sampler: logSampler{now: o.Now, burst: LogBurst, period: LogPeriod}}
	var err error
	if g.refused, err = counterVec(o.Registerer, "refused_total",
		"HTTP requests and TLS connections refused by a listener's authentication, by listener and reason.", "reason"); err != nil {
		return nil, err
	}
	if g.reloads, err = counterVec(o.Registerer, "reloads_total",
		"Reloads of a listener's token, certificate and client CA files, by listener and result (ok, failed).", "result"); err != nil {
		return nil, err
	}
	st, err := g.load()
	if err != nil {
		return nil, err
	}
	g.state.Store(st)
	g.initSeries()
	g.stamps = g.stat()
	return g, nil
}

// initSeries makes the counters of what the guard does visible at 0 before anything happens.
func (g *Guard) initSeries() {
	var reasons []string
	if g.opts.TokenFile != "" {
		reasons = append(reasons, ReasonNoToken, ReasonBadScheme, ReasonWrongToken)
	}
	if g.opts.ClientCAFile != "" {
		reasons = append(reasons, ReasonNoClientCert, ReasonBadClientCert)
	}
	for _, r := range reasons {
		g.refused.WithLabelValues(g.opts.Listener, r)
	}
	if g.Enabled() {
		g.reloads.WithLabelValues(g.opts.Listener, "ok")
		g.reloads.WithLabelValues(g.opts.Listener, "failed")
	}
}

// Enabled reports whether the Guard does anything (TLS or tokens).
func (g *Guard) Enabled() bool { return g.opts.CertFile != "" || g.opts.TokenFile != "" }

// TLS reports whether the listener serves TLS.
func (g *Guard) TLS() bool { return g.opts.CertFile != "" }

// load reads every configured file.
func (g *Guard) load() (*state, error) {
	st := &state{}
	if g.opts.TokenFile != "" {
		tokens, err := readTokens(g.opts.TokenFile)
		if err != nil {
			return nil, err
		}
		st.tokens = tokens
	}
	if g.opts.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(g.opts.CertFile, g.opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("httpsec: %s: certificate %s, key %s: %w", g.opts.Listener, g.opts.CertFile, g.opts.KeyFile, err)
		}
		st.cert = &cert
	}
	if g.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(g.opts.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("httpsec: %s: client CA file: %w", g.opts.Listener, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("httpsec: %s: client CA file %s: no PEM certificate", g.opts.Listener, g.opts.ClientCAFile)
		}
		st.clients = pool
	}
	return st, nil
}

// readTokens reads a token file; the error never quotes it.
func readTokens(path string) ([][sha256.Size]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("httpsec: token file: %w", err)
	}
	var tokens [][sha256.Size]byte
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens = append(tokens, sha256.Sum256([]byte(line)))
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoTokens, path)
	}
	return tokens, nil
}

// Reload reads the files again. On an error the Guard keeps what it had, counts the failure
// and returns it.
func (g *Guard) Reload() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reloadLocked()
}

func (g *Guard) reloadLocked() error {
	g.stamps = g.stat()
	st, err := g.load()
	if err != nil {
		g.reloads.WithLabelValues(g.opts.Listener, "failed").Inc()
		g.log.Error().Err(err).Msg("httpsec: reload failed; keeping the previous tokens and certificates")
		return err
	}
	g.state.Store(st)
	g.reloads.WithLabelValues(g.opts.Listener, "ok").Inc()
	g.log.Info().Int("tokens", len(st.tokens)).Msg("httpsec: reloaded")
	return nil
}

// Watch reloads the files whenever one of them changes (size, time or inode, looked at every
// interval; 0: DefaultWatchInterval), until ctx is done.
func (g *Guard) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.mu.Lock()
			if !sameStamps(g.stamps, g.stat()) {
				_ = g.reloadLocked()
			}
			g.mu.Unlock()
		}
	}
}

// Listen binds addr (TCP) and, with TLS, serves TLS on it.
func (g *Guard) Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if !g.TLS() {
		return l, nil
	}
	return tls.NewListener(l, g.TLSConfig()), nil
}

// TLSConfig is the server's TLS configuration (nil without TLS): the current certificate, and
// with a client CA file the check of the client's certificate, both as of the last reload.
func (g *Guard) TLSConfig() *tls.Config {
	if !g.TLS() {
		return nil
	}
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return g.state.Load().cert, nil
		},
	}
	if g.opts.ClientCAFile != "" {
		// The client's certificate is requested and checked here, against the current pool,
		// so that each refusal is counted by its reason.
		c.ClientAuth = tls.RequestClientCert
		c.VerifyConnection = g.verifyClient
	}
	return c
}

func (g *Guard) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		g.refuse(ReasonNoClientCert, "")
		return errors.New("httpsec: a client certificate is required")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: g.state.Load().clients, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		g.refuse(ReasonBadClientCert, "")
		return fmt.Errorf("httpsec: client certificate: %w", err)
	}
	return nil
}

// Handler checks the bearer token of every request (when there is a token file) before h
// sees it; a request without one, or with a wrong one, is answered 401 with
// WWW-Authenticate: Bearer.
func (g *Guard) Handler(h http.Handler) http.Handler {
	if g.opts.TokenFile == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := g.check(r.Header.Get("Authorization")); reason != "" {
			g.refuse(reason, r.RemoteAddr)
			challenge := `Bearer realm="pharos-node"`
			if reason == ReasonWrongToken {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// check returns the refusal reason of an Authorization header, "" when it carries a token of
// the file. Every token is compared, in constant time, whatever matched.
func (g *Guard) check(header string) string {
	if header == "" {
		return ReasonNoToken
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ReasonBadScheme
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, t := range g.state.Load().tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match != 1 {
		return ReasonWrongToken
	}
	return ""
}

// refuse counts and logs (within the limit) a refusal; never the token.
func (g *Guard) refuse(reason, remote string) {
	g.refused.WithLabelValues(g.opts.Listener, reason).Inc()
	ev := g.log.Warn()
	if ev == nil {
		return
	}
	ok, suppressed := g.sampler.allow()
	if !ok {
		ev.Discard()
		return
	}
	ev = ev.Str("reason", reason)
	if remote != "" {
		ev = ev.Str("remote", remote)
	}
	if suppressed > 0 {
		ev = ev.Int("suppressed", suppressed)
	}
	ev.Msg("httpsec: request refused")
}
