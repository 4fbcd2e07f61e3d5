package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

// copyingBatchSink is a MetricsSink that keeps copies of what it gets (the buffers are the source's) and
// refuses with ErrSinkFull past capacity (0: never).
type copyingBatchSink struct {
	mu       sync.Mutex
	capacity int
	calls    int
	ms       []etf.Metric
}

func (s *copyingBatchSink) Deliver(rec Record) error {
	_, err := s.DeliverMetrics([]etf.Metric{*rec.Metric})
	return err
}

func (s *copyingBatchSink) DeliverMetrics(ms []etf.Metric) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	for i, m := range ms {
		if s.capacity > 0 && len(s.ms) >= s.capacity {
			return i, fmt.Errorf("holds %d: %w", s.capacity, ErrSinkFull)
		}
		m.Name = strings.Clone(m.Name)
		m.Source = strings.Clone(m.Source)
		m.Tags = cloneTags(m.Tags)
		s.ms = append(s.ms, m)
	}
	return len(ms), nil
}

func (s *copyingBatchSink) metrics() []etf.Metric {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]etf.Metric(nil), s.ms...)
}

// TestHTTPBatchSink: with a MetricsSink, a request's valid metrics go in one call, in order, the
// refusals (invalid and sink full) are named by request index in order, and a later request does
// not change what an earlier one delivered (the buffers are used again).
func TestHTTPBatchSink(t *testing.T) {
	sink := &copyingBatchSink{capacity: 2}
	reg := prometheus.NewRegistry()
	srv := newTestHandler(t, sink, reg, nil)
	body := `[{"name":"a","kind":"gauge","value":1,"tags":{"k":"v1"}},{"name":"","kind":"gauge","value":1},
	  {"name":"b","kind":"counter","value":2,"tags":[["k","v2"]]},{"name":"c","kind":"gauge","value":3},
	  {"name":"d","kind":"gauge","value":4},{"bad":1}]`
	status, resp, _ := post(t, srv.URL+MetricsPath, "application/json", body)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, 2, resp.Accepted)
	var idx []int
	for _, r := range resp.Refused {
		idx = append(idx, r.Index)
	}
	assert.Equal(t, []int{1, 3, 4, 5}, idx)
	assert.Contains(t, resp.Refused[1].Error, "sink full")
	assert.Contains(t, resp.Refused[2].Error, "sink full")
	assert.Equal(t, 2, sink.calls, "one call, and one more after the refusal")
	status, _, _ = post(t, srv.URL+MetricsPath, "", `{"name":"zzz","kind":"gauge","value":9,"tags":{"x":"yyyyy"}}`)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, []etf.Metric{
		{Name: "a", Kind: etf.Gauge, Value: 1, Tags: []etf.Tag{{Key: "k", Value: "v1"}}, TimestampMs: fixedMs, Source: "api"},
		{Name: "b", Kind: etf.Counter, Value: 2, Tags: []etf.Tag{{Key: "k", Value: "v2"}}, TimestampMs: fixedMs, Source: "api"},
	}, sink.metrics())
	assert.InDelta(t, 2, counterValue(t, counterVec(t, reg, "pharos_ingest_records_accepted_total").WithLabelValues(KindHTTP)), 0)
	assert.InDelta(t, 3, counterValue(t, counterVec(t, reg, "pharos_ingest_records_refused_total").WithLabelValues(KindHTTP, ReasonSinkFull)), 0)
}

// TestHTTPMediaTypeSaysWhatToSend: curl -d without -H sends a form content type; the answer says
// which header to send.
func TestHTTPMediaTypeSaysWhatToSend(t *testing.T) {
	srv := newTestHandler(t, &memSink{}, nil, nil)
	status, resp, _ := post(t, srv.URL+MetricsPath, "application/x-www-form-urlencoded", `{"name":"n","kind":"gauge","value":1}`)
	assert.Equal(t, http.StatusUnsupportedMediaType, status)
	assert.Contains(t, resp.Error, "Content-Type: application/json")
	assert.Contains(t, resp.Error, "curl -d")
}

// rawRequest writes a request head with the given Content-Length (-1: chunked) and part of a
// body on a fresh connection, and leaves it open.
func rawRequest(t *testing.T, addr string, contentLength int, part string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	head := "POST " + MetricsPath + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	if contentLength >= 0 {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", contentLength)
	} else {
		head += "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", len(part))
	}
	_, err = io.WriteString(conn, head+part)
	require.NoError(t, err)
	return conn
}

// readStatus reads the status line of the answer on conn.
func readStatus(t *testing.T, conn net.Conn) (int, string) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufioReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After") + " " + string(raw)
}

// TestHTTPInflightBudget: requests whose bodies would take the total in flight over the budget
// are answered 429 with Retry-After at once, unread; once the held bodies are answered (here:
// 408 at the body deadline), their bytes are available again; the refusals are counted.
func TestHTTPInflightBudget(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	srv := newTestHandler(t, sink, reg, func(o *HTTPOptions) {
		o.MaxBodyBytes = 1000
		o.MaxInflightBytes = 2500
		o.BodyTimeout = 500 * time.Millisecond
	})
	addr := srv.Listener.Addr().String()
	// Two stalled bodies of 1000 bytes hold 2000 of 2500.
	held := []net.Conn{rawRequest(t, addr, 1000, "[{"), rawRequest(t, addr, 1000, "[{")}
	gauge := func() float64 { return inflightBytes(t, reg) }
	require.Eventually(t, func() bool { return gauge() == 2000 }, 5*time.Second, 5*time.Millisecond)
	// A third of 1000 does not fit; one of 400 does; a chunked body is refused once it grows past.
	status, text := readStatus(t, rawRequest(t, addr, 1000, ""))
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Contains(t, text, "1 ")
	assert.Contains(t, text, "too many request bytes in flight")
	one := `{"name":"n","kind":"gauge","value":1}`
	status, resp, _ := post(t, srv.URL+MetricsPath, "", one)
	assert.Equal(t, http.StatusOK, status, resp.Error)
	// The held bodies time out: 408, and their bytes come back.
	for _, c := range held {
		status, text := readStatus(t, c)
		assert.Equal(t, http.StatusRequestTimeout, status)
		assert.Contains(t, text, "request body too slow")
	}
	require.Eventually(t, func() bool { return gauge() == 0 }, 5*time.Second, 5*time.Millisecond)
	status, resp, _ = post(t, srv.URL+MetricsPath, "", "["+strings.Repeat(one+",", 20)+one+"]")
	assert.Equal(t, http.StatusOK, status, "the budget is whole again: %s", resp.Error)
	requests := counterVec(t, reg, "pharos_ingest_requests_refused_total")
	assert.InDelta(t, 1, counterValue(t, requests.WithLabelValues(KindHTTP, ReasonBusy)), 0)
	assert.InDelta(t, 2, counterValue(t, requests.WithLabelValues(KindHTTP, ReasonTimeout)), 0)
}

// TestHTTPInflightBudgetChunked: a body without Content-Length reserves as it grows.
func TestHTTPInflightBudgetChunked(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := newTestHandler(t, &memSink{}, reg, func(o *HTTPOptions) {
		o.MaxBodyBytes = 100 << 10
		o.MaxInflightBytes = 100 << 10
		o.BodyTimeout = 2 * time.Second
	})
	addr := srv.Listener.Addr().String()
	// One chunked body stalled at 40 KiB holds the steps of 16, 16 and 32 KiB: 64 KiB.
	part := "[" + strings.Repeat(" ", 40<<10)
	held := rawRequest(t, addr, -1, part)
	require.Eventually(t, func() bool { return inflightBytes(t, reg) == 64<<10 }, 5*time.Second, 5*time.Millisecond,
		"in flight: %v", inflightBytes(t, reg))
	status, _ := readStatus(t, rawRequest(t, addr, 40<<10, "")) // 64 + 40 > 100 KiB
	assert.Equal(t, http.StatusTooManyRequests, status)
	status, _ = readStatus(t, held)
	assert.Equal(t, http.StatusRequestTimeout, status)
	// A chunked body within the limits is read whole.
	body := bytes.NewBufferString(`[{"name":"n","kind":"gauge","value":1}]`)
	req, err := http.NewRequest(http.MethodPost, srv.URL+MetricsPath, io.NopCloser(body)) // no length: chunked
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	// A chunked body of exactly MaxBodyBytes passes, one byte more is too large.
	for _, tc := range []struct {
		extra  int
		status int
	}{{0, http.StatusOK}, {1, http.StatusRequestEntityTooLarge}} {
		one := `{"name":"n","kind":"gauge","value":1}`
		body := one + strings.Repeat(" ", 100<<10-len(one)+tc.extra)
		req, err := http.NewRequest(http.MethodPost, srv.URL+MetricsPath, io.NopCloser(strings.NewReader(body)))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, tc.status, resp.StatusCode, "extra %d", tc.extra)
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// inflightBytes reads pharos_ingest_http_inflight_bytes from reg.
func inflightBytes(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "pharos_ingest_http_inflight_bytes" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
