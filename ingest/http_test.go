package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

// newTestHandler serves a Handler on a real loopback listener.
func newTestHandler(t *testing.T, sink Sink, reg prometheus.Registerer, tweak func(*HTTPOptions)) *httptest.Server {
	t.Helper()
	opts := HTTPOptions{Common: Common{Sink: sink, Registerer: reg, Now: fixedClock}, Source: "api"}
	if tweak != nil {
		tweak(&opts)
	}
	h, err := NewHandler(opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/v1/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, contentType, body string) (int, Response, http.Header) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r Response
	require.NoError(t, json.Unmarshal(raw, &r), "body %s", raw)
	return resp.StatusCode, r, resp.Header
}

// TestHTTPMixedRecords sends good and bad records in one request: the good ones arrive in order, the
// bad ones are named by index and reason, and the counters say so.
func TestHTTPMixedRecords(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewPedanticRegistry()
	srv := newTestHandler(t, sink, reg, nil)

	body := `[
	  {"name":"cpu","kind":"gauge","value":0.25,"tags":{"host":"a","core":"0"}},
	  {"name":"","kind":"gauge","value":1},
	  {"name":"reqs","kind":"counter","value":3,"tags":[["path","/x"]],"timestamp_ms":5,"source":"svc"},
	  {"name":"dup","kind":"gauge","value":1,"tags":{"a":"1","a":"2"}},
	  {"name":"big","kind":"gauge","value":1e999},
	  "not an object",
	  {"name":"lat","kind":"histogram","value":12.5}
	]`
	status, resp, _ := post(t, srv.URL+MetricsPath, "application/json", body)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, 3, resp.Accepted)
	require.Len(t, resp.Refused, 4)
	wantRefused := []struct {
		index int
		has   string
	}{
		{1, "empty name"},
		{3, "duplicate tag key"},
		{4, "out of range"},
		{5, "not a JSON object"},
	}
	for i, w := range wantRefused {
		assert.Equal(t, w.index, resp.Refused[i].Index)
		assert.Contains(t, resp.Refused[i].Error, w.has)
	}

	assert.Equal(t, []etf.Metric{
		{Name: "cpu", Kind: etf.Gauge, Value: 0.25, Tags: []etf.Tag{{Key: "host", Value: "a"}, {Key: "core", Value: "0"}}, TimestampMs: fixedMs, Source: "api"},
		{Name: "reqs", Kind: etf.Counter, Value: 3, Tags: []etf.Tag{{Key: "path", Value: "/x"}}, TimestampMs: 5, Source: "svc"},
		{Name: "lat", Kind: etf.Histogram, Value: 12.5, TimestampMs: fixedMs, Source: "api"},
	}, sink.metrics())

	assert.InDelta(t, 3, counterValue(t, counterVec(t, reg, "pharos_ingest_records_accepted_total").WithLabelValues(KindHTTP)), 0)
	refused := counterVec(t, reg, "pharos_ingest_records_refused_total")
	assert.InDelta(t, 2, counterValue(t, refused.WithLabelValues(KindHTTP, ReasonInvalid)), 0)
	assert.InDelta(t, 2, counterValue(t, refused.WithLabelValues(KindHTTP, ReasonDecode)), 0)
}

// counterValue reads a counter (testutil would add a module to go.sum).
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

// counterVec gets back the vector registered under name, through the reuse path of the package.
func counterVec(t *testing.T, reg prometheus.Registerer, name string) *prometheus.CounterVec {
	t.Helper()
	c, err := newCounters(reg)
	require.NoError(t, err)
	switch name {
	case "pharos_ingest_records_accepted_total":
		return c.accepted
	case "pharos_ingest_records_refused_total":
		return c.refused
	case "pharos_ingest_requests_refused_total":
		return c.requestsRefused
	}
	t.Fatalf("no counter %s", name)
	return nil
}

func TestHTTPAlerts(t *testing.T) {
	sink := &memSink{}
	srv := newTestHandler(t, sink, nil, nil)
	status, resp, _ := post(t, srv.URL+AlertsPath, "application/json; charset=utf-8",
		`{"name":"disk","severity":"critical","message":"/var at 98%","tags":{"host":"a"}}`)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, Response{Accepted: 1, Refused: []Refusal{}}, resp)
	assert.Equal(t, []etf.Alert{{Name: "disk", Severity: etf.Critical, Message: "/var at 98%", Tags: []etf.Tag{{Key: "host", Value: "a"}}, TimestampMs: fixedMs, Source: "api"}}, sink.alerts())

	// A metric body on the alerts path is refused field by field.
	status, resp, _ = post(t, srv.URL+AlertsPath, "", `[{"name":"cpu","kind":"gauge","value":1}]`)
	assert.Equal(t, http.StatusBadRequest, status)
	require.Len(t, resp.Refused, 1)
	assert.Contains(t, resp.Refused[0].Error, "kind: ingest: unknown field")
}

func TestHTTPLimitsAndErrors(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	srv := newTestHandler(t, sink, reg, func(o *HTTPOptions) {
		o.MaxBodyBytes = 200
		o.MaxRecords = 2
	})
	one := `{"name":"n","kind":"gauge","value":1}`
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantError   string
	}{
		{"body over limit", http.MethodPost, MetricsPath, "application/json", "[" + strings.Repeat(one+",", 6) + one + "]", http.StatusRequestEntityTooLarge, "too large"},
		{"too many records", http.MethodPost, MetricsPath, "application/json", "[" + one + "," + one + "," + one + "]", http.StatusRequestEntityTooLarge, "too many records"},
		{"not JSON", http.MethodPost, MetricsPath, "application/json", "name=n", http.StatusBadRequest, "malformed JSON"},
		{"form content type", http.MethodPost, MetricsPath, "application/x-www-form-urlencoded", one, http.StatusUnsupportedMediaType, "unsupported media type"},
		{"GET", http.MethodGet, MetricsPath, "", "", http.StatusMethodNotAllowed, "use POST"},
		{"unknown path", http.MethodPost, "/v1/other", "application/json", one, http.StatusNotFound, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var r Response
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Contains(t, r.Error, tt.wantError)
			assert.Zero(t, r.Accepted)
		})
	}
	assert.Empty(t, sink.records(), "nothing of a refused request is delivered")
	requests := counterVec(t, reg, "pharos_ingest_requests_refused_total")
	assert.InDelta(t, 1, counterValue(t, requests.WithLabelValues(KindHTTP, ReasonTooLarge)), 0)
	assert.InDelta(t, 1, counterValue(t, requests.WithLabelValues(KindHTTP, ReasonTooMany)), 0)
	assert.InDelta(t, 1, counterValue(t, requests.WithLabelValues(KindHTTP, ReasonMalformed)), 0)
	assert.InDelta(t, 1, counterValue(t, requests.WithLabelValues(KindHTTP, ReasonMediaType)), 0)

	// Exactly at the limits passes.
	status, resp, _ := post(t, srv.URL+MetricsPath, "application/json", "["+one+","+one+"]")
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, 2, resp.Accepted)
}

// TestHTTPBodyTooLargeStreamed sends a body without Content-Length, so only MaxBytesReader catches it.
func TestHTTPBodyTooLargeStreamed(t *testing.T) {
	sink := &memSink{}
	srv := newTestHandler(t, sink, nil, func(o *HTTPOptions) { o.MaxBodyBytes = 64 })
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("[" + strings.Repeat(`{"name":"n","kind":"gauge","value":1},`, 10)))
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, srv.URL+MetricsPath, pr)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Empty(t, sink.records())
}

func TestHTTPSinkFull(t *testing.T) {
	sink := &memSink{capacity: 2}
	reg := prometheus.NewRegistry()
	srv := newTestHandler(t, sink, reg, nil)
	one := `{"name":"n","kind":"gauge","value":1}`
	status, resp, hdr := post(t, srv.URL+MetricsPath, "application/json", "["+one+","+one+","+one+"]")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	assert.Equal(t, 2, resp.Accepted)
	require.Len(t, resp.Refused, 1)
	assert.Equal(t, 2, resp.Refused[0].Index)
	assert.Contains(t, resp.Refused[0].Error, "sink full")

	// A validation refusal takes precedence: the client must fix its input first.
	status, resp, _ = post(t, srv.URL+MetricsPath, "application/json", `[`+one+`,{"name":"n"}]`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Len(t, resp.Refused, 2)
	assert.InDelta(t, 2, counterValue(t, counterVec(t, reg, "pharos_ingest_records_refused_total").WithLabelValues(KindHTTP, ReasonSinkFull)), 0)
}

func TestHTTPSinkErrorOtherThanFull(t *testing.T) {
	sink := SinkFunc(func(Record) error { return fmt.Errorf("disk on fire") })
	reg := prometheus.NewRegistry()
	srv := newTestHandler(t, sink, reg, nil)
	status, resp, _ := post(t, srv.URL+MetricsPath, "", `{"name":"n","kind":"gauge","value":1}`)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	require.Len(t, resp.Refused, 1)
	assert.Equal(t, "sink: disk on fire", resp.Refused[0].Error)
	assert.InDelta(t, 1, counterValue(t, counterVec(t, reg, "pharos_ingest_records_refused_total").WithLabelValues(KindHTTP, ReasonSinkError)), 0)
}

func TestNewHandlerNeedsSink(t *testing.T) {
	_, err := NewHandler(HTTPOptions{})
	require.Error(t, err)
}

// TestHTTPRecordLimits checks that Common.Limits reaches etf's Validate.
func TestHTTPRecordLimits(t *testing.T) {
	sink := &memSink{}
	srv := newTestHandler(t, sink, nil, func(o *HTTPOptions) { o.Limits = etf.RecordLimits{MaxNameBytes: 4} })
	status, resp, _ := post(t, srv.URL+MetricsPath, "", `[{"name":"abcd","kind":"gauge","value":1},{"name":"abcde","kind":"gauge","value":1}]`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, 1, resp.Accepted)
	require.Len(t, resp.Refused, 1)
	assert.Contains(t, resp.Refused[0].Error, "longer than its limit")
}

func TestHTTPConcurrentRequests(t *testing.T) {
	sink := &memSink{}
	srv := newTestHandler(t, sink, prometheus.NewRegistry(), nil)
	const clients, perClient = 8, 20
	done := make(chan error, clients)
	for c := range clients {
		go func() {
			var buf bytes.Buffer
			buf.WriteByte('[')
			for i := range perClient {
				if i > 0 {
					buf.WriteByte(',')
				}
				fmt.Fprintf(&buf, `{"name":"c%d","kind":"counter","value":%d}`, c, i)
			}
			buf.WriteByte(']')
			resp, err := http.Post(srv.URL+MetricsPath, "application/json", &buf)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			done <- err
		}()
	}
	for range clients {
		require.NoError(t, <-done)
	}
	assert.Len(t, sink.records(), clients*perClient)
}
