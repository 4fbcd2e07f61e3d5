package otlpsink_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/otlpsink"
)

// Unit tests of the transport's answers, against plain handlers (the delivery through the
// manager is tested against the Collector's receiver in collector_delivery_test.go).

// plain is an httptest server that decodes each request and answers with reply.
type plain struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []plainRequest
	reply    func(r plainRequest, w http.ResponseWriter)
}

type plainRequest struct {
	Path     string
	Header   http.Header
	Names    []string  // metrics: one per point; logs: event names
	Values   []float64 // metrics only
	Empty    bool
	Gzip     bool
	BodySize int
}

func newPlain(t *testing.T, reply func(r plainRequest, w http.ResponseWriter)) *plain {
	p := &plain{reply: reply}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *plain) serve(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	req := plainRequest{Path: r.URL.Path, Header: r.Header.Clone()}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body, req.Gzip = zr, true
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.BodySize = len(data)
	if r.URL.Path == otlpsink.LogsPath {
		var m collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(data, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rl := range m.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					req.Names = append(req.Names, lr.EventName)
				}
			}
		}
	} else {
		var m colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(data, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rm := range m.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, mt := range sm.Metrics {
					for _, dp := range append(mt.GetGauge().GetDataPoints(), mt.GetSum().GetDataPoints()...) {
						req.Names = append(req.Names, mt.Name)
						req.Values = append(req.Values, dp.GetAsDouble())
					}
				}
			}
		}
	}
	req.Empty = len(req.Names) == 0
	p.mu.Lock()
	p.requests = append(p.requests, req)
	reply := p.reply
	p.mu.Unlock()
	if reply != nil {
		reply(req, w)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (p *plain) data() []plainRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []plainRequest
	for _, r := range p.requests {
		if !r.Empty {
			out = append(out, r)
		}
	}
	return out
}

// newTransport builds a sink on p and one transport.
func newTransport(t *testing.T, p *plain, o otlpsink.Options) (*otlpsink.Sink, fsm.RequestTransport) {
	t.Helper()
	o.Endpoint = p.srv.URL
	s, err := otlpsink.New(o)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	tr, err := s.NewTransport(nil)
	require.NoError(t, err)
	rt, ok := tr.(fsm.RequestTransport)
	require.True(t, ok, "the transport is an fsm.RequestTransport")
	return s, rt
}

func encodeMetrics(t *testing.T, from, to int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := from; i < to; i++ {
		m := seqMetric(i)
		b, err := etf.AppendMetric(nil, &m)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func encodeAlert(t *testing.T, name string) []byte {
	t.Helper()
	a := etf.Alert{Name: name, Severity: etf.Warning, Message: "m", TimestampMs: 1, Source: "s"}
	b, err := etf.AppendAlert(nil, &a)
	require.NoError(t, err)
	return b
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSplitsBySignalAndSize(t *testing.T) {
	p := newPlain(t, nil)
	s, tr := newTransport(t, p, otlpsink.Options{MaxPoints: 3, Header: http.Header{"X-Api-Key": {"k"}}})
	require.NoError(t, tr.Connect(ctx(t)))
	recs := append(encodeMetrics(t, 0, 4), encodeAlert(t, "a1"), encodeAlert(t, "a2"))
	recs = append(recs, encodeMetrics(t, 4, 5)...)
	n, err := tr.DeliverBatch(ctx(t), recs)
	require.NoError(t, err)
	assert.Equal(t, len(recs), n)
	got := p.data()
	require.Len(t, got, 4)
	assert.Equal(t, []float64{0, 1, 2}, got[0].Values)
	assert.Equal(t, []float64{3}, got[1].Values)
	assert.Equal(t, otlpsink.LogsPath, got[2].Path)
	assert.Equal(t, []string{"a1", "a2"}, got[2].Names)
	assert.Equal(t, []float64{4}, got[3].Values)
	for _, r := range got {
		assert.True(t, r.Gzip, "gzip by default")
		assert.Equal(t, "k", r.Header.Get("X-Api-Key"))
		assert.Equal(t, "application/x-protobuf", r.Header.Get("Content-Type"))
	}
	assert.Equal(t, uint64(7), s.Stats().Sent)
	assert.Equal(t, 3, tr.MinBatch())
}

func TestCompressionNone(t *testing.T) {
	p := newPlain(t, nil)
	_, tr := newTransport(t, p, otlpsink.Options{Compression: otlpsink.CompressionNone})
	_, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 2))
	require.NoError(t, err)
	require.Len(t, p.data(), 1)
	assert.False(t, p.data()[0].Gzip)
	assert.Empty(t, p.data()[0].Header.Get("Content-Encoding"))
}

func TestPartialSuccessCounted(t *testing.T) {
	p := newPlain(t, func(r plainRequest, w http.ResponseWriter) {
		resp := &colmetricspb.ExportMetricsServiceResponse{PartialSuccess: &colmetricspb.ExportMetricsPartialSuccess{
			RejectedDataPoints: 2, ErrorMessage: "two points refused"}}
		b, _ := proto.Marshal(resp)
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	})
	s, tr := newTransport(t, p, otlpsink.Options{})
	n, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 5))
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	st := s.Stats()
	assert.Equal(t, uint64(3), st.Sent)
	assert.Equal(t, uint64(2), st.Rejected)
	assert.Equal(t, map[string]uint64{otlpsink.ReasonPartialSuccess: 2}, st.Dropped)
}

func TestPartialSuccessJSON(t *testing.T) {
	p := newPlain(t, func(r plainRequest, w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"no"}}`)
	})
	s, tr := newTransport(t, p, otlpsink.Options{})
	_, err := tr.DeliverBatch(ctx(t), [][]byte{encodeAlert(t, "a"), encodeAlert(t, "b")})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), s.Stats().Rejected)
	assert.Equal(t, uint64(1), s.Stats().Sent)
}

// TestTooLargeIsSplit: 413 for a request of several points sends it again in halves; 413 for
// one point drops it.
func TestTooLargeIsSplit(t *testing.T) {
	p := newPlain(t, func(r plainRequest, w http.ResponseWriter) {
		if len(r.Values) > 3 || (len(r.Values) == 1 && r.Values[0] == 13) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s, tr := newTransport(t, p, otlpsink.Options{MaxPoints: 10})
	n, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 10))
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	var delivered []float64
	for _, r := range p.data() {
		if len(r.Values) <= 3 {
			delivered = append(delivered, r.Values...)
		}
	}
	assert.Equal(t, []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, delivered)
	_, err = tr.DeliverBatch(ctx(t), encodeMetrics(t, 13, 14))
	require.NoError(t, err)
	assert.Equal(t, map[string]uint64{"http_413": 1}, s.Stats().Dropped)
}

// TestAnswersThatKeep: 401, 403, 429, 500, 503 keep the records (an error, nothing done, nothing
// dropped); 400, 404, 422 drop them, counted by status.
func TestAnswersThatKeep(t *testing.T) {
	for _, tt := range []struct {
		status int
		keep   bool
	}{
		{http.StatusUnauthorized, true}, {http.StatusForbidden, true}, {http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true}, {http.StatusBadGateway, true}, {http.StatusServiceUnavailable, true},
		{http.StatusRequestTimeout, true},
		{http.StatusBadRequest, false}, {http.StatusNotFound, false}, {http.StatusUnprocessableEntity, false},
	} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			p := newPlain(t, func(r plainRequest, w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, `{"code":3,"message":"said no"}`)
			})
			s, tr := newTransport(t, p, otlpsink.Options{})
			n, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 4))
			st := s.Stats()
			if tt.keep {
				var se *otlpsink.StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tt.status, se.Status)
				assert.Equal(t, "said no", se.Message)
				assert.Equal(t, 0, n)
				assert.Empty(t, st.Dropped)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 4, n)
			assert.Equal(t, map[string]uint64{otlpsink.ReasonStatus(tt.status): 4}, st.Dropped)
		})
	}
}

// TestLogsNotServedDropsAlertsOnly: a receiver without a logs pipeline (404 on /v1/logs) drops the
// alerts, counted; the metrics around them are delivered.
func TestLogsNotServedDropsAlertsOnly(t *testing.T) {
	p := newPlain(t, func(r plainRequest, w http.ResponseWriter) {
		if r.Path == otlpsink.LogsPath {
			http.NotFound(w, nil)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s, tr := newTransport(t, p, otlpsink.Options{})
	recs := append(encodeMetrics(t, 0, 2), encodeAlert(t, "a"))
	recs = append(recs, encodeMetrics(t, 2, 3)...)
	n, err := tr.DeliverBatch(ctx(t), recs)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	assert.Equal(t, uint64(3), s.Stats().Sent)
	assert.Equal(t, map[string]uint64{"http_404": 1}, s.Stats().Dropped)
}

func TestUndecodableCounted(t *testing.T) {
	p := newPlain(t, nil)
	s, tr := newTransport(t, p, otlpsink.Options{})
	recs := append(encodeMetrics(t, 0, 1), []byte{131, 100, 0, 2, 'o', 'k'}, []byte("not etf"))
	recs = append(recs, encodeMetrics(t, 1, 2)...)
	n, err := tr.DeliverBatch(ctx(t), recs)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	require.Len(t, p.data(), 1)
	assert.Equal(t, []float64{0, 1}, p.data()[0].Values)
	assert.Equal(t, map[string]uint64{otlpsink.ReasonUndecodable: 2}, s.Stats().Dropped)
	n, err = tr.DeliverBatch(ctx(t), [][]byte{[]byte("x")})
	require.NoError(t, err, "a batch of nothing decodable needs no request")
	assert.Equal(t, 1, n)
}

// TestConnectProbe: Connect sends an empty metrics request; a wrong path or credentials fail it
// (nothing would be delivered), a 400 to the empty request does not.
func TestConnectProbe(t *testing.T) {
	for _, tt := range []struct {
		status int
		ok     bool
	}{{200, true}, {400, true}, {404, false}, {401, false}, {415, false}, {500, false}} {
		p := newPlain(t, func(r plainRequest, w http.ResponseWriter) { w.WriteHeader(tt.status) })
		_, tr := newTransport(t, p, otlpsink.Options{})
		err := tr.Connect(ctx(t))
		assert.Equal(t, tt.ok, err == nil, "status %d: %v", tt.status, err)
		require.Len(t, p.requests, 1)
		assert.True(t, p.requests[0].Empty)
	}
}

// TestRetryAfterRefusesEarlyRequests: after a 503 with Retry-After, DeliverBatch and a Connect
// whose deadline is too short refuse with ErrRetryLater without sending; a Connect with time
// enough waits, then probes.
func TestRetryAfterRefusesEarlyRequests(t *testing.T) {
	first := true
	p := newPlain(t, func(r plainRequest, w http.ResponseWriter) {
		if first {
			first = false
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	_, tr := newTransport(t, p, otlpsink.Options{})
	_, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 1))
	var se *otlpsink.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, time.Second, se.RetryAfter)
	refused := time.Now()

	_, err = tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 1))
	assert.ErrorIs(t, err, otlpsink.ErrRetryLater)
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, tr.Connect(short), otlpsink.ErrRetryLater)
	assert.Len(t, p.requests, 1, "nothing sent before Retry-After")

	require.NoError(t, tr.Connect(ctx(t)))
	assert.GreaterOrEqual(t, time.Since(refused), 900*time.Millisecond)
	n, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 1))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// TestMaxRetryAfter: a Retry-After beyond MaxRetryAfter is capped.
func TestMaxRetryAfter(t *testing.T) {
	p := newPlain(t, func(r plainRequest, w http.ResponseWriter) {
		w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	})
	_, tr := newTransport(t, p, otlpsink.Options{MaxRetryAfter: 200 * time.Millisecond})
	_, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 1))
	var se *otlpsink.StatusError
	require.ErrorAs(t, err, &se)
	assert.InDelta(t, time.Hour.Seconds(), se.RetryAfter.Seconds(), 5, "an HTTP date is read")
	time.Sleep(250 * time.Millisecond)
	_, err = tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 1))
	require.ErrorAs(t, err, &se, "sent again once the capped wait is over")
}

func TestNetworkErrorKeeps(t *testing.T) {
	p := newPlain(t, nil)
	_, tr := newTransport(t, p, otlpsink.Options{Timeout: time.Second})
	p.srv.Close()
	n, err := tr.DeliverBatch(ctx(t), encodeMetrics(t, 0, 3))
	require.Error(t, err)
	assert.Equal(t, 0, n)
	var se *otlpsink.StatusError
	assert.False(t, errors.As(err, &se))
}

func TestOptions(t *testing.T) {
	for _, o := range []otlpsink.Options{
		{},
		{Endpoint: "collector:4318"},
		{Endpoint: "ftp://collector"},
		{Endpoint: "http://collector:4318?x=1"},
		{Endpoint: "http://collector:4318", MaxPoints: -1},
		{Endpoint: "http://collector:4318", Timeout: -time.Second},
		{Endpoint: "http://collector:4318", Header: http.Header{"Content-Type": {"x"}}},
		{Endpoint: "http://collector:4318", Header: http.Header{"X-Key": {"a\nb"}}},
		{Endpoint: "http://collector:4318", Header: http.Header{"bad key": {"a"}}},
	} {
		_, err := otlpsink.New(o)
		assert.ErrorIs(t, err, otlpsink.ErrInvalid, "%+v", o)
	}
	h, err := otlpsink.ParseHeaders([]string{"x-api-key=abc", "x-team = a%20b"})
	require.NoError(t, err)
	assert.Equal(t, "abc", h.Get("X-Api-Key"))
	assert.Equal(t, "a b", h.Get("X-Team"))
	_, err = otlpsink.ParseHeaders([]string{"novalue"})
	assert.ErrorIs(t, err, otlpsink.ErrInvalid)
	for _, s := range []string{"gzip", "none"} {
		c, err := otlpsink.ParseCompression(s)
		require.NoError(t, err)
		assert.Equal(t, s, c.String())
	}
	for _, s := range []string{"cumulative", "delta"} {
		c, err := otlpsink.ParseTemporality(s)
		require.NoError(t, err)
		assert.Equal(t, s, c.String())
	}
	_, err = otlpsink.ParseCompression("zstd")
	assert.ErrorIs(t, err, otlpsink.ErrInvalid)
}

func TestEndpointPath(t *testing.T) {
	p := newPlain(t, nil)
	s, err := otlpsink.New(otlpsink.Options{Endpoint: p.srv.URL + "/otlp/"})
	require.NoError(t, err)
	defer s.Close()
	tr, err := s.NewTransport(nil)
	require.NoError(t, err)
	require.NoError(t, tr.Deliver(ctx(t), encodeMetrics(t, 0, 1)[0]))
	assert.Equal(t, "/otlp"+otlpsink.MetricsPath, p.data()[0].Path)
	assert.Equal(t, "otlp "+p.srv.URL+"/otlp/", s.String())
}
