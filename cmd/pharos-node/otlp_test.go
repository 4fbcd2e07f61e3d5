package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/internal/httpsec/httpsectest"
	"github.com/pharos-node/pharos-node/internal/otlptest"
)

// waitBrainRecords waits until the Brain has received total records and checks that its last
// len(Expected) are otlptest's, values, kinds, tags and source.
func waitBrainRecords(t *testing.T, b *erltest.Brain, total int64, fromMs, toMs int64) {
	t.Helper()
	want := otlptest.Expected()
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Received >= total })
	if !ok || st.Received != total || st.Invalid != 0 {
		t.Fatalf("Brain stats %+v, want %d records", st, total)
	}
	got := b.LastRecords(len(want))
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name || g.Kind != w.Kind || !otlptest.Near(g.Value, w.Value) || fmt.Sprint(g.Tags) != fmt.Sprint(w.Tags) ||
			g.Source != otlptest.Service || g.TimestampMs < fromMs || g.TimestampMs > toMs {
			t.Errorf("record %d: the Brain got %+v, want %+v from %s", i, g, w, otlptest.Service)
		}
	}
}

// The real OTel SDK (sdk/metric, otlpmetrichttp) sends a counter, a gauge, an up-down counter
// and a histogram with attributes to the daemon's OTLP receiver, as protobuf and as OTLP/JSON
// (through a proxy re-encoding the SDK's requests), gzipped or not; the reference Brain gets
// the records docs/otel.md says. The Pharos JSON endpoint keeps working beside it.
func TestRunOTLPReceiver(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	httpAddr, otlpAddr := freeTCP(t), freeTCP(t)
	cfg := runConfig(t, b, httpAddr, t.TempDir(), fmt.Sprintf("  otlp:\n    listen: %s\n", otlpAddr))
	d := startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	url := "http://" + otlpAddr + "/v1/metrics"
	n := int64(len(otlptest.Expected()))
	total := int64(0)
	for _, tc := range []struct {
		name       string
		json, gzip bool
	}{{"protobuf", false, false}, {"protobuf+gzip", false, true}, {"json", true, false}, {"json+gzip", true, true}} {
		target := url
		if tc.json {
			proxy := otlptest.JSONProxy(url, tc.gzip)
			defer proxy.Close()
			target = proxy.URL + "/v1/metrics"
		}
		before := time.Now().UnixMilli()
		if err := otlptest.Send(context.Background(), target, otlptest.Options{Gzip: tc.gzip && !tc.json}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		total += n
		waitBrainRecords(t, b, total, before, time.Now().UnixMilli())
	}
	// Bad points beside good ones: the good ones reach the Brain, the bad ones are counted in
	// partial_success.
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "otlp-bad")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for i, v := range []float64{1, math.NaN(), 2} {
		m := ms.AppendEmpty()
		m.SetName(fmt.Sprintf("mixed.%d", i))
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetDoubleValue(v)
		dp.Attributes().PutStr("seq", strconv.Itoa(i))
		if i == 2 {
			for k := range 10_000 {
				dp.Attributes().PutInt(fmt.Sprintf("a%d", k), int64(k))
			}
			m.SetName("mixed.many")
			ms.AppendEmpty().SetName("mixed.good")
			ms.At(3).SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(3)
		}
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	answer := pmetricotlp.NewExportResponse()
	if err := answer.UnmarshalProto(out); resp.StatusCode != http.StatusOK || err != nil || answer.PartialSuccess().RejectedDataPoints() != 2 {
		t.Fatalf("bad points beside good ones: %d %v %q", resp.StatusCode, err, answer.PartialSuccess().ErrorMessage())
	}
	total += 2
	if st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Received >= total }); !ok || st.Received != total || st.Invalid != 0 {
		t.Fatalf("Brain stats %+v, want %d records", st, total)
	}
	last := b.LastRecords(2)
	if last[0].Name != "mixed.0" || last[0].Value != 1 || last[1].Name != "mixed.good" || last[1].Value != 3 || last[1].Source != "otlp-bad" {
		t.Fatalf("the Brain got %+v, want mixed.0 and mixed.good", last)
	}
	if status, resp := d.post("/v1/metrics", metricsJSON("json-beside", 0, 3)); status != http.StatusOK || resp.Accepted != 3 {
		t.Fatalf("the Pharos JSON endpoint: %d %+v", status, resp)
	}
	_, metrics := d.get("/metrics")
	for _, want := range []string{fmt.Sprintf(`pharos_ingest_records_accepted_total{source="otlp"} %d`, total),
		`pharos_ingest_records_refused_total{reason="non_finite",source="otlp"} 1`,
		`pharos_ingest_records_refused_total{reason="too_many_tags",source="otlp"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// secureDaemon is a daemon whose three listeners each have TLS and a token.
type secureDaemon struct {
	ingest, otlp, admin string // base URLs
	certs               httpsectest.Files
	token               string
}

// Every listener with TLS and a token (the OTLP one with mutual TLS too): a request without the
// token or with a wrong one is refused (401), with the right one accepted; a client without a
// certificate is refused by the OTLP listener's mutual TLS. The refusals are counted on
// /metrics, and the token is in no log line.
func TestRunListenersTLSAndToken(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	certs := httpsectest.WriteCerts(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	const token = "daemon-token-7f3a"
	if err := os.WriteFile(tokens, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr, otlpAddr, adminAddr := freeTCP(t), freeTCP(t), freeTCP(t)
	sec := func(indent, ca string) string {
		s := fmt.Sprintf("%stls:\n%s  cert_file: %s\n%s  key_file: %s\n", indent, indent, certs.ServerCert, indent, certs.ServerKey)
		if ca != "" {
			s += fmt.Sprintf("%s  client_ca_file: %s\n", indent, ca)
		}
		return s + fmt.Sprintf("%sauth:\n%s  token_file: %s\n", indent, indent, tokens)
	}
	extra := sec("    ", "") + fmt.Sprintf("  otlp:\n    listen: %s\n", otlpAddr) + sec("    ", certs.CA) +
		fmt.Sprintf("admin:\n  listen: %s\n", adminAddr) + sec("  ", "")
	cfg := runConfig(t, b, httpAddr, t.TempDir(), extra)
	d := &secureDaemon{ingest: "https://" + httpAddr, otlp: "https://" + otlpAddr, admin: "https://" + adminAddr, certs: certs, token: token}

	t.Setenv("PHAROS_COOKIE", b.Cookie)
	ctx, cancel := context.WithCancel(context.Background())
	log := &lockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- runRun(ctx, []string{"--config", cfg}, io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("daemon did not stop")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	server := certs.ClientTLS(t, "", "")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if status, _ := d.do(t, server, http.MethodGet, d.admin+"/readyz", "Bearer "+token, ""); status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	client := certs.ClientTLS(t, certs.ClientCert, certs.ClientKey)
	record := `{"name":"tls.ok","kind":"gauge","value":1,"tags":{"seq":"0"},"source":"tls"}`
	for _, l := range []struct {
		name, method, url, body string
		tls                     *tls.Config
	}{
		{"ingest.http", http.MethodPost, d.ingest + "/v1/metrics", record, server},
		{"admin", http.MethodGet, d.admin + "/healthz", "", server},
		{"ingest.otlp", http.MethodPost, d.otlp + "/v1/metrics", "", client},
	} {
		for _, auth := range []string{"", "Bearer wrong-token", "Basic " + token} {
			if status, body := d.do(t, l.tls, l.method, l.url, auth, l.body); status != http.StatusUnauthorized {
				t.Errorf("%s with Authorization %q: %d %s, want 401", l.name, auth, status, body)
			}
		}
		if l.name == "ingest.otlp" {
			continue // the right token is tried below with the SDK
		}
		if status, body := d.do(t, l.tls, l.method, l.url, "Bearer "+token, l.body); status != http.StatusOK {
			t.Errorf("%s with the token: %d %s", l.name, status, body)
		}
	}
	// OTLP: the SDK with the token and a client certificate gets through; without the
	// certificate, or without the token, it does not.
	send := func(cert bool, headers map[string]string) error {
		conf := server
		if cert {
			conf = client
		}
		return otlptest.Send(context.Background(), d.otlp+"/v1/metrics", otlptest.Options{TLS: conf, Headers: headers})
	}
	withToken := map[string]string{"Authorization": "Bearer " + token}
	if err := send(false, withToken); err == nil {
		t.Error("the OTLP listener served a client without a certificate")
	}
	if err := send(true, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("the OTLP listener without the token: %v, want a 401", err)
	}
	before := time.Now().UnixMilli()
	if err := send(true, withToken); err != nil {
		t.Fatalf("the OTLP listener with the token and a certificate: %v", err)
	}
	waitBrainRecords(t, b, 1+int64(len(otlptest.Expected())), before, time.Now().UnixMilli())

	_, metrics := d.do(t, server, http.MethodGet, d.admin+"/metrics", "Bearer "+token, "")
	for _, want := range []string{
		`pharos_http_refused_total{listener="ingest.http",reason="no_token"} 1`,
		`pharos_http_refused_total{listener="ingest.http",reason="wrong_token"} 1`,
		`pharos_http_refused_total{listener="ingest.http",reason="bad_scheme"} 1`,
		`pharos_http_refused_total{listener="admin",reason="wrong_token"} 1`,
		`pharos_http_refused_total{listener="ingest.otlp",reason="no_client_cert"} 1`,
		`pharos_http_refused_total{listener="ingest.otlp",reason="no_token"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// SIGHUP reads every listener's files again (here unchanged: Watch would not reload them).
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, metrics := d.do(t, server, http.MethodGet, d.admin+"/metrics", "Bearer "+token, "")
		if strings.Contains(metrics, `pharos_http_reloads_total{listener="ingest.otlp",result="ok"} 1`) &&
			strings.Contains(metrics, `pharos_http_reloads_total{listener="admin",result="ok"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload of the listeners' files after SIGHUP:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status, body := d.do(t, server, http.MethodGet, d.admin+"/healthz", "Bearer "+token, ""); status != http.StatusOK {
		t.Errorf("after SIGHUP: %d %s", status, body)
	}
	if strings.Contains(log.String(), token) {
		t.Errorf("the token is in the log")
	}
}

// do sends one request and returns the status and the body.
func (d *secureDaemon) do(t *testing.T, conf *tls.Config, method, url, auth, body string) (int, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: conf}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}
