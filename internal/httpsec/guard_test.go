package httpsec_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/httpsec"
	"github.com/pharos-node/pharos-node/internal/httpsec/httpsectest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	goodToken  = "s3cret-token-one"
	otherToken = "second-token"
	wrongToken = "not-the-token"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeTokens(t *testing.T, path string, tokens ...string) {
	t.Helper()
	content := "# tokens of the test\n\n" + strings.Join(tokens, "\n") + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// served is a guarded server on loopback.
type served struct {
	g    *httpsec.Guard
	url  string
	reg  *prometheus.Registry
	logs *lockedBuffer
}

func serve(t *testing.T, o httpsec.Options) *served {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	o.Registerer, o.Logger = reg, zerolog.New(logs)
	if o.Listener == "" {
		o.Listener = "test"
	}
	g, err := httpsec.New(o)
	if err != nil {
		t.Fatal(err)
	}
	l, err := g.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})), ErrorLog: nil}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	scheme := "http"
	if g.TLS() {
		scheme = "https"
	}
	return &served{g: g, url: scheme + "://" + l.Addr().String() + "/", reg: reg, logs: logs}
}

// get sends a request with the Authorization header auth ("" for none) over a client of tlsConf.
func get(t *testing.T, url, auth string, tlsConf *tls.Config) (int, http.Header, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: tlsConf}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, nil
}

func refused(s *served, reason string) float64 {
	return counterWith(s, "pharos_http_refused_total", reason)
}

// counterWith sums the counter name's series with a label of value label.
func counterWith(s *served, name, label string) float64 {
	families, _ := s.reg.Gather()
	var v float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					v += m.GetCounter().GetValue()
				}
			}
		}
	}
	return v
}

func TestTLSAndToken(t *testing.T) {
	certs := httpsectest.WriteCerts(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, tokens, goodToken, otherToken)
	s := serve(t, httpsec.Options{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, TokenFile: tokens})
	client := certs.ClientTLS(t, "", "")
	for _, tc := range []struct {
		name, auth string
		status     int
		reason     string
	}{
		{"no token", "", 401, httpsec.ReasonNoToken},
		{"wrong token", "Bearer " + wrongToken, 401, httpsec.ReasonWrongToken},
		{"basic auth", "Basic " + goodToken, 401, httpsec.ReasonBadScheme},
		{"token only", goodToken, 401, httpsec.ReasonBadScheme},
		{"right token", "Bearer " + goodToken, 200, ""},
		{"second token, scheme in lower case", "bearer " + otherToken, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := refused(s, tc.reason)
			status, hdr, err := get(t, s.url, tc.auth, client)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if tc.status == 401 {
				if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
				}
				if got := refused(s, tc.reason); got != before+1 {
					t.Fatalf("refusals (%s) %v, want %v", tc.reason, got, before+1)
				}
			}
		})
	}
	// Plain HTTP to the TLS listener gets no answer from the handler.
	if status, _, err := get(t, strings.Replace(s.url, "https", "http", 1), "Bearer "+goodToken, nil); err == nil && status == 200 {
		t.Fatal("plain HTTP served")
	}
	for _, secret := range []string{goodToken, otherToken, wrongToken} {
		if strings.Contains(s.logs.String(), secret) {
			t.Fatalf("a token reached the log: %s", s.logs.String())
		}
	}
	if !strings.Contains(s.logs.String(), httpsec.ReasonWrongToken) {
		t.Fatalf("refusals not logged: %s", s.logs.String())
	}
}

func TestMutualTLS(t *testing.T) {
	certs := httpsectest.WriteCerts(t)
	s := serve(t, httpsec.Options{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: certs.CA})
	if _, _, err := get(t, s.url, "", certs.ClientTLS(t, "", "")); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if _, _, err := get(t, s.url, "", certs.ClientTLS(t, certs.OtherCert, certs.OtherKey)); err == nil {
		t.Fatal("a client with another CA's certificate was served")
	}
	if status, _, err := get(t, s.url, "", certs.ClientTLS(t, certs.ClientCert, certs.ClientKey)); err != nil || status != 200 {
		t.Fatalf("the right client certificate: %d %v", status, err)
	}
	if refused(s, httpsec.ReasonNoClientCert) != 1 || refused(s, httpsec.ReasonBadClientCert) != 1 {
		t.Fatalf("refusals: no cert %v, bad cert %v", refused(s, httpsec.ReasonNoClientCert), refused(s, httpsec.ReasonBadClientCert))
	}
}

func TestReloadTokens(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, tokens, goodToken)
	s := serve(t, httpsec.Options{TokenFile: tokens})
	if status, _, _ := get(t, s.url, "Bearer "+goodToken, nil); status != 200 {
		t.Fatalf("before: %d", status)
	}
	writeTokens(t, tokens, otherToken)
	if err := s.g.Reload(); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, s.url, "Bearer "+goodToken, nil); status != 401 {
		t.Fatalf("a revoked token: %d", status)
	}
	if status, _, _ := get(t, s.url, "Bearer "+otherToken, nil); status != 200 {
		t.Fatalf("the new token: %d", status)
	}
	// A broken file keeps the tokens there were, and the failure is counted and logged
	// without the file's content.
	if err := os.WriteFile(tokens, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.g.Reload(); !errors.Is(err, httpsec.ErrNoTokens) {
		t.Fatalf("reload of an empty file: %v", err)
	}
	if status, _, _ := get(t, s.url, "Bearer "+otherToken, nil); status != 200 {
		t.Fatalf("after a failed reload: %d", status)
	}
	if got := counterWith(s, "pharos_http_reloads_total", "failed"); got != 1 {
		t.Fatalf("failed reloads %v", got)
	}
	// Watch reloads by itself when the file changes.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.g.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	writeTokens(t, tokens, goodToken, "a-third-token")
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _, _ := get(t, s.url, "Bearer a-third-token", nil)
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not reload the changed token file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(s.logs.String(), "a-third-token") || strings.Contains(s.logs.String(), otherToken) {
		t.Fatalf("a token reached the log: %s", s.logs.String())
	}
}

func TestReloadCertificate(t *testing.T) {
	certs := httpsectest.WriteCerts(t)
	s := serve(t, httpsec.Options{CertFile: certs.ServerCert, KeyFile: certs.ServerKey})
	serial := func() string {
		conn, err := tls.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(s.url, "https://"), "/"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	fresh := httpsectest.WriteCerts(t)
	for _, pair := range [][2]string{{fresh.ServerCert, certs.ServerCert}, {fresh.ServerKey, certs.ServerKey}} {
		data, err := os.ReadFile(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pair[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.g.Reload(); err != nil {
		t.Fatal(err)
	}
	if after := serial(); after == before {
		t.Fatal("the new certificate is not served after a reload")
	}
}

func TestConfigErrors(t *testing.T) {
	certs := httpsectest.WriteCerts(t)
	empty := filepath.Join(t.TempDir(), "empty")
	writeTokens(t, empty)
	for _, tc := range []struct {
		name string
		o    httpsec.Options
		want error
	}{
		{"cert without key", httpsec.Options{CertFile: certs.ServerCert}, httpsec.ErrConfig},
		{"client CA without cert", httpsec.Options{ClientCAFile: certs.CA}, httpsec.ErrConfig},
		{"empty token file", httpsec.Options{TokenFile: empty}, httpsec.ErrNoTokens},
		{"missing token file", httpsec.Options{TokenFile: empty + ".missing"}, os.ErrNotExist},
		{"key that is not a key", httpsec.Options{CertFile: certs.ServerCert, KeyFile: certs.CA}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httpsec.New(tc.o)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	g, err := httpsec.New(httpsec.Options{})
	if err != nil || g.Enabled() || g.TLSConfig() != nil {
		t.Fatalf("a guard of nothing: %v", err)
	}
}
