package otlp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/ingest/otlp"
	"github.com/pharos-node/pharos-node/internal/otlptest"
)

// sink collects records; full makes it refuse every record after the first `room`.
type sink struct {
	mu   sync.Mutex
	got  []etf.Metric
	full bool
	room int
}

func (s *sink) Deliver(rec ingest.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full && len(s.got) >= s.room {
		return fmt.Errorf("test sink: %w", ingest.ErrSinkFull)
	}
	s.got = append(s.got, *rec.Metric)
	return nil
}

func (s *sink) records() []etf.Metric {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]etf.Metric(nil), s.got...)
}

func newServer(t *testing.T, s *sink, opts otlp.Options) *httptest.Server {
	t.Helper()
	opts.Sink = s
	h, err := otlp.NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// checkExpected compares got with otlptest.Expected: same records, in order.
func checkExpected(t *testing.T, got []etf.Metric, fromMs, toMs int64) {
	t.Helper()
	want := otlptest.Expected()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		tags := make([][2]string, len(g.Tags))
		for j, tg := range g.Tags {
			tags[j] = [2]string{tg.Key, tg.Value}
		}
		if g.Name != w.Name || g.Kind.String() != w.Kind || !otlptest.Near(g.Value, w.Value) ||
			fmt.Sprint(tags) != fmt.Sprint(w.Tags) || g.Source != otlptest.Service {
			t.Errorf("record %d: %s %s %v %v from %q; want %s %s %v %v", i, g.Name, g.Kind, g.Value, tags, g.Source, w.Name, w.Kind, w.Value, w.Tags)
		}
		if g.TimestampMs < fromMs || g.TimestampMs > toMs {
			t.Errorf("record %d: timestamp %d outside [%d, %d]", i, g.TimestampMs, fromMs, toMs)
		}
	}
}

// The real OTel SDK with its otlpmetrichttp exporter, protobuf (plain and gzipped) and, through
// a proxy that re-encodes its requests, OTLP/JSON (plain and gzipped).
func TestSDKExporterBothEncodings(t *testing.T) {
	for _, tc := range []struct {
		name       string
		json, gzip bool
	}{{"protobuf", false, false}, {"protobuf+gzip", false, true}, {"json", true, false}, {"json+gzip", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{}
			srv := newServer(t, s, otlp.Options{})
			url := srv.URL + otlp.MetricsPath
			if tc.json {
				proxy := otlptest.JSONProxy(url, tc.gzip)
				defer proxy.Close()
				url = proxy.URL + otlp.MetricsPath
			}
			before := time.Now().UnixMilli()
			if err := otlptest.Send(context.Background(), url, otlptest.Options{Gzip: tc.gzip && !tc.json}); err != nil {
				t.Fatal(err)
			}
			checkExpected(t, s.records(), before, time.Now().UnixMilli())
		})
	}
}

// post sends body and returns the status, the headers and the body of the answer.
func post(t *testing.T, url, ctype, encoding string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// statusMessage decodes a protobuf google.rpc.Status's message.
func statusMessage(t *testing.T, body []byte) (int, string) {
	t.Helper()
	code, msg := 0, ""
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			t.Fatalf("status body %q", body)
		}
		body = body[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(body)
			code, body = int(v), body[m:]
		case num == 2 && typ == protowire.BytesType:
			v, m := protowire.ConsumeString(body)
			msg, body = v, body[m:]
		default:
			t.Fatalf("status body: field %d", num)
		}
	}
	return code, msg
}

// request builds an ExportMetricsServiceRequest with one resource (service.name "svc") and one
// gauge per value, named g0, g1, ...; attrs(i, dp) may add attributes to point i.
func request(values []float64, attrs func(i int, m pcommon.Map)) pmetricotlp.ExportRequest {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	for i, v := range values {
		m := ms.AppendEmpty()
		m.SetName(fmt.Sprintf("g%d", i))
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetDoubleValue(v)
		dp.SetTimestamp(pcommon.Timestamp(1_700_000_000_000 * 1e6))
		if attrs != nil {
			attrs(i, dp.Attributes())
		}
	}
	return pmetricotlp.NewExportRequestFromMetrics(md)
}

func protoBody(t *testing.T, req pmetricotlp.ExportRequest) []byte {
	t.Helper()
	b, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeResponse(t *testing.T, body []byte, jsonBody bool) pmetricotlp.ExportResponse {
	t.Helper()
	resp := pmetricotlp.NewExportResponse()
	var err error
	if jsonBody {
		err = resp.UnmarshalJSON(body)
	} else {
		err = resp.UnmarshalProto(body)
	}
	if err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	return resp
}

// Bad points beside good ones: NaN, infinity, 10,000 attributes, an over-long name. The good
// points are delivered; the answer is 200 with partial_success counting the bad ones.
func TestBadPointsBesideGoodOnes(t *testing.T) {
	for _, jsonBody := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", jsonBody), func(t *testing.T) {
			s := &sink{}
			srv := newServer(t, s, otlp.Options{})
			req := request([]float64{1, math.NaN(), 2, math.Inf(-1), 3, 4}, func(i int, m pcommon.Map) {
				if i == 2 {
					for k := range 10_000 {
						m.PutInt(fmt.Sprintf("attr%d", k), int64(k))
					}
				}
			})
			long := req.Metrics().ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(5)
			long.SetName(strings.Repeat("x", 256))
			var body []byte
			ctype := otlp.ContentTypeProtobuf
			if jsonBody {
				var err error
				if body, err = req.MarshalJSON(); err != nil {
					// NaN has no JSON number: OTLP/JSON writes it as the string "NaN".
					t.Fatal(err)
				}
				ctype = otlp.ContentTypeJSON
			} else {
				body = protoBody(t, req)
			}
			status, _, out := post(t, srv.URL+otlp.MetricsPath, ctype, "", bytes.NewReader(body))
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, out)
			}
			resp := decodeResponse(t, out, jsonBody)
			ps := resp.PartialSuccess()
			if ps.RejectedDataPoints() != 4 || !strings.Contains(ps.ErrorMessage(), "4 of 6 data points refused") {
				t.Fatalf("partial success %d %q", ps.RejectedDataPoints(), ps.ErrorMessage())
			}
			for _, want := range []string{`"g1"`, "NaN or infinite", "more tags than MaxTags", `"g3"`, "x...\" point 0", "256 bytes, limit 255"} {
				if !strings.Contains(ps.ErrorMessage(), want) {
					t.Errorf("error message %q lacks %q", ps.ErrorMessage(), want)
				}
			}
			got := s.records()
			if len(got) != 2 || got[0].Name != "g0" || got[0].Value != 1 || got[1].Name != "g4" || got[1].Value != 3 ||
				got[0].Source != "svc" || got[0].TimestampMs != 1_700_000_000_000 {
				t.Fatalf("delivered %+v, want g0 and g4", got)
			}
		})
	}
}

// OTLP/JSON as the specification writes it (its example), by hand: 64-bit integers as strings,
// enums as numbers, an exemplar with hex trace and span ids (OTLP/JSON's, not protobuf JSON's
// base64; exemplars are not mapped), a field this receiver does not know (ignored, as OTLP asks).
func TestSpecificationJSON(t *testing.T) {
	s := &sink{}
	srv := newServer(t, s, otlp.Options{})
	body := `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
	 "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0"},"metrics":[
	  {"name":"my.counter","unit":"1","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
	    {"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
	     "exemplars":[{"timeUnixNano":"1544712660300000000","asDouble":1,
	       "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}],
	     "someFieldOfALaterVersion":{"x":1},
	     "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}}]}]}},
	  {"name":"my.gauge","gauge":{"dataPoints":[{"asInt":"10","timeUnixNano":"1544712660300000000"}]}},
	  {"name":"my.histogram","histogram":{"aggregationTemporality":1,"dataPoints":[
	    {"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000","count":"2","sum":2,
	     "bucketCounts":["1","1"],"explicitBounds":[1],"min":0,"max":2}]}}]}]}]}`
	status, _, out := post(t, srv.URL+otlp.MetricsPath, "application/json; charset=utf-8", "", strings.NewReader(body))
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, out)
	}
	if resp := decodeResponse(t, out, true); resp.PartialSuccess().RejectedDataPoints() != 0 {
		t.Fatalf("rejected: %q", resp.PartialSuccess().ErrorMessage())
	}
	got := s.records()
	want := []string{
		"my.counter counter 5 [{my.counter.attr some value}] my.service 1544712660300",
		"my.gauge gauge 10 [] my.service 1544712660300",
		"my.histogram_bucket histogram 1 [{le 1}] my.service 1544712660300",
		"my.histogram_bucket histogram 2 [{le +Inf}] my.service 1544712660300",
		"my.histogram_sum histogram 2 [] my.service 1544712660300",
		"my.histogram_count histogram 2 [] my.service 1544712660300",
		"my.histogram_min histogram 0 [] my.service 1544712660300",
		"my.histogram_max histogram 2 [] my.service 1544712660300",
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, g := range got {
		if line := fmt.Sprintf("%s %s %v %v %s %d", g.Name, g.Kind, g.Value, g.Tags, g.Source, g.TimestampMs); line != want[i] {
			t.Errorf("record %d: %s, want %s", i, line, want[i])
		}
	}
}

// Whole requests refused: clear errors (a google.rpc.Status), nothing delivered.
func TestRequestsRefused(t *testing.T) {
	s := &sink{}
	srv := newServer(t, s, otlp.Options{MaxBodyBytes: 1 << 20})
	good := protoBody(t, request([]float64{1, 2, 3}, nil))
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 100<<20)) // 100 MiB of zeros, about 100 KiB gzipped
	_ = zw.Close()
	for _, tc := range []struct {
		name, ctype, encoding string
		body                  io.Reader
		status                int
		msg                   string
	}{
		{"truncated protobuf", otlp.ContentTypeProtobuf, "", bytes.NewReader(good[:len(good)-7]), 400, "malformed request"},
		{"not protobuf", otlp.ContentTypeProtobuf, "", strings.NewReader("\xff\xff\xff\xff"), 400, "malformed request"},
		{"truncated JSON", otlp.ContentTypeJSON, "", strings.NewReader(`{"resourceMetrics":[{`), 400, "malformed request"},
		{"wrong content type", "text/plain", "", bytes.NewReader(good), 415, "unsupported content type"},
		{"no content type", "", "", bytes.NewReader(good), 415, "unsupported content type"},
		{"unknown encoding", otlp.ContentTypeProtobuf, "br", bytes.NewReader(good), 415, "unsupported content encoding"},
		{"bad gzip", otlp.ContentTypeProtobuf, "gzip", bytes.NewReader(good), 400, "malformed request"},
		{"100 MB body", otlp.ContentTypeProtobuf, "", io.LimitReader(zeros{}, 100<<20), 413, "too large"},
		{"gzip bomb", otlp.ContentTypeProtobuf, "gzip", bytes.NewReader(bomb.Bytes()), 413, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, out := post(t, srv.URL+otlp.MetricsPath, tc.ctype, tc.encoding, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %q", status, tc.status, out)
			}
			if want := otlp.ContentTypeProtobuf; tc.ctype == otlp.ContentTypeJSON && hdr.Get("Content-Type") != otlp.ContentTypeJSON ||
				tc.ctype != otlp.ContentTypeJSON && hdr.Get("Content-Type") != want {
				t.Fatalf("content type %q", hdr.Get("Content-Type"))
			}
			if tc.ctype == otlp.ContentTypeJSON {
				if !strings.Contains(string(out), tc.msg) {
					t.Fatalf("status %s, want %q", out, tc.msg)
				}
				return
			}
			if _, msg := statusMessage(t, out); !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q, want %q", msg, tc.msg)
			}
		})
	}
	if got := s.records(); len(got) != 0 {
		t.Fatalf("delivered %v from refused requests", got)
	}
	// JSON requests get JSON statuses; other paths and methods are refused too.
	status, _, out := post(t, srv.URL+otlp.MetricsPath, otlp.ContentTypeJSON, "", strings.NewReader("nope"))
	if status != 400 || !strings.HasPrefix(string(out), `{"code":3,"message":"otlp: malformed request`) {
		t.Fatalf("JSON error: %d %s", status, out)
	}
	if status, _, _ := post(t, srv.URL+otlp.TracesPath, otlp.ContentTypeProtobuf, "", bytes.NewReader(good)); status != 404 {
		t.Fatalf("traces: %d", status)
	}
	resp, err := http.Get(srv.URL + otlp.MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Every prefix of a valid protobuf request is refused whole or decodes to fewer points: it
// never panics, never delivers a point the request did not have.
func TestEveryProtobufPrefix(t *testing.T) {
	s := &sink{}
	h, err := otlp.NewHandler(otlp.Options{Common: ingest.Common{Sink: s}})
	if err != nil {
		t.Fatal(err)
	}
	body := protoBody(t, request([]float64{1, 2}, func(_ int, m pcommon.Map) { m.PutStr("k", "v") }))
	for n := range len(body) {
		req := httptest.NewRequest(http.MethodPost, otlp.MetricsPath, bytes.NewReader(body[:n]))
		req.Header.Set("Content-Type", otlp.ContentTypeProtobuf)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("prefix %d: status %d", n, rec.Code)
		}
	}
	for _, m := range s.records() {
		if (m.Name != "g0" || m.Value != 1) && (m.Name != "g1" || m.Value != 2) {
			t.Fatalf("a prefix delivered %+v", m)
		}
	}
}

// A full sink: nothing delivered gives 503 with Retry-After (a retry duplicates nothing); some
// delivered gives 200 with the rest in partial_success.
func TestSinkFull(t *testing.T) {
	s := &sink{full: true}
	srv := newServer(t, s, otlp.Options{RetryAfter: 3 * time.Second})
	body := protoBody(t, request([]float64{1, 2, 3}, nil))
	status, hdr, out := post(t, srv.URL+otlp.MetricsPath, otlp.ContentTypeProtobuf, "", bytes.NewReader(body))
	if status != 503 || hdr.Get("Retry-After") != "3" {
		t.Fatalf("status %d, Retry-After %q: %q", status, hdr.Get("Retry-After"), out)
	}
	if code, msg := statusMessage(t, out); code != 14 || !strings.Contains(msg, "sink full") {
		t.Fatalf("status %d %q", code, msg)
	}
	s.mu.Lock()
	s.room = 2
	s.mu.Unlock()
	status, _, out = post(t, srv.URL+otlp.MetricsPath, otlp.ContentTypeProtobuf, "", bytes.NewReader(body))
	if status != 200 {
		t.Fatalf("status %d: %q", status, out)
	}
	ps := decodeResponse(t, out, false).PartialSuccess()
	if ps.RejectedDataPoints() != 1 || !strings.Contains(ps.ErrorMessage(), "not taken by the sink") {
		t.Fatalf("partial success %d %q", ps.RejectedDataPoints(), ps.ErrorMessage())
	}
	if len(s.records()) != 2 {
		t.Fatalf("delivered %v", s.records())
	}
}

// Memory stays bounded whatever the request: a 100 MB body, a gzip bomb and a point with
// 10,000 attributes each cost a bounded amount, not their size: with a 4 MiB limit, at most ten
// times the limit is allocated in the whole process (client included) while each is refused
// (about 16 MiB without the race detector, which doubles it: the body buffer grows by doubling).
func TestMemoryBounded(t *testing.T) {
	s := &sink{}
	srv := newServer(t, s, otlp.Options{MaxBodyBytes: 4 << 20})
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 100<<20))
	_ = zw.Close()
	many := protoBody(t, request([]float64{1}, func(_ int, m pcommon.Map) {
		for k := range 10_000 {
			m.PutStr(fmt.Sprintf("attr%d", k), "value")
		}
	}))
	allocated := func(f func()) uint64 {
		var before, after runtimeMem
		before.read()
		f()
		after.read()
		return after.total - before.total
	}
	for _, tc := range []struct {
		name     string
		body     func() io.Reader
		encoding string
		limit    uint64
	}{
		{"100 MB body", func() io.Reader { return io.LimitReader(zeros{}, 100<<20) }, "", 40 << 20},
		{"gzip bomb", func() io.Reader { return bytes.NewReader(bomb.Bytes()) }, "gzip", 40 << 20},
		{"10,000 attributes", func() io.Reader { return bytes.NewReader(many) }, "", 40 << 20},
	} {
		got := allocated(func() {
			post(t, srv.URL+otlp.MetricsPath, otlp.ContentTypeProtobuf, tc.encoding, tc.body())
		})
		t.Logf("%s: %d KiB allocated in the process", tc.name, got>>10)
		if got > tc.limit {
			t.Errorf("%s: %d MiB allocated, limit %d MiB", tc.name, got>>20, tc.limit>>20)
		}
	}
}
