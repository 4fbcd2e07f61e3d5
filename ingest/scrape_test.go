package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

func TestParseExposition(t *testing.T) {
	def := recordDefaults{timestampMs: fixedMs, source: "prom"}
	tags := func(kv ...string) []etf.Tag {
		out := []etf.Tag{}
		for i := 0; i < len(kv); i += 2 {
			out = append(out, etf.Tag{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name    string
		text    string
		max     int // MaxSamples; 0: 100
		want    []etf.Metric
		wantErr error
	}{
		{
			name: "counter and gauge, labels sorted, families by name",
			text: `# TYPE reqs_total counter
reqs_total{path="/b",method="GET"} 3
reqs_total{path="/a",method="POST"} 1 1600000000000
# TYPE a_gauge gauge
a_gauge 0.5
`,
			want: []etf.Metric{
				{Name: "a_gauge", Kind: etf.Gauge, Value: 0.5, Tags: tags(), TimestampMs: fixedMs, Source: "prom"},
				{Name: "reqs_total", Kind: etf.Counter, Value: 3, Tags: tags("method", "GET", "path", "/b"), TimestampMs: fixedMs, Source: "prom"},
				{Name: "reqs_total", Kind: etf.Counter, Value: 1, Tags: tags("method", "POST", "path", "/a"), TimestampMs: 1600000000000, Source: "prom"},
			},
		},
		{
			name: "untyped is a gauge; escapes in label values",
			text: "thing{z=\"a\\\"b\\\\c\\nd\"} -7\n",
			want: []etf.Metric{{Name: "thing", Kind: etf.Gauge, Value: -7, Tags: tags("z", "a\"b\\c\nd"), TimestampMs: fixedMs, Source: "prom"}},
		},
		{
			name: "histogram expands to _bucket{le}, _sum, _count",
			text: `# TYPE lat histogram
lat_bucket{op="r",le="0.1"} 1
lat_bucket{op="r",le="1"} 4
lat_bucket{op="r",le="+Inf"} 5
lat_sum{op="r"} 3.5
lat_count{op="r"} 5
`,
			want: []etf.Metric{
				{Name: "lat_bucket", Kind: etf.Counter, Value: 1, Tags: tags("le", "0.1", "op", "r"), TimestampMs: fixedMs, Source: "prom"},
				{Name: "lat_bucket", Kind: etf.Counter, Value: 4, Tags: tags("le", "1", "op", "r"), TimestampMs: fixedMs, Source: "prom"},
				{Name: "lat_bucket", Kind: etf.Counter, Value: 5, Tags: tags("le", "+Inf", "op", "r"), TimestampMs: fixedMs, Source: "prom"},
				{Name: "lat_sum", Kind: etf.Counter, Value: 3.5, Tags: tags("op", "r"), TimestampMs: fixedMs, Source: "prom"},
				{Name: "lat_count", Kind: etf.Counter, Value: 5, Tags: tags("op", "r"), TimestampMs: fixedMs, Source: "prom"},
			},
		},
		{
			name: "summary expands to quantile gauges, _sum, _count",
			text: `# TYPE gc summary
gc{quantile="0.5"} 0.01
gc{quantile="0.99"} 0.2
gc_sum 1.5
gc_count 30
`,
			want: []etf.Metric{
				{Name: "gc", Kind: etf.Gauge, Value: 0.01, Tags: tags("quantile", "0.5"), TimestampMs: fixedMs, Source: "prom"},
				{Name: "gc", Kind: etf.Gauge, Value: 0.2, Tags: tags("quantile", "0.99"), TimestampMs: fixedMs, Source: "prom"},
				{Name: "gc_sum", Kind: etf.Counter, Value: 1.5, Tags: tags(), TimestampMs: fixedMs, Source: "prom"},
				{Name: "gc_count", Kind: etf.Counter, Value: 30, Tags: tags(), TimestampMs: fixedMs, Source: "prom"},
			},
		},
		{name: "empty", text: "", want: nil},
		{name: "malformed", text: "reqs_total{path=\"/b\" 3\n", wantErr: ErrExposition},
		{name: "bad value", text: "x abc\n", wantErr: ErrExposition},
		{name: "too many samples", text: "a 1\nb 2\nc 3\nd 4\n", max: 3, wantErr: ErrTooManySamples},
		{name: "histogram over the sample limit", text: "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", max: 2, wantErr: ErrTooManySamples},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = 100
			}
			got, err := parseExposition([]byte(tt.text), def, max)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseExpositionNaNPassesToValidate(t *testing.T) {
	got, err := parseExposition([]byte("x NaN\ny +Inf\n"), recordDefaults{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.True(t, math.IsNaN(got[0].Value))
	assert.True(t, math.IsInf(got[1].Value, 1))
}

// exposition serves text with the content type of the text format.
func exposition(text string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = fmt.Fprint(w, text)
	}
}

func TestScrape(t *testing.T) {
	var accept atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept.Store(r.Header.Get("Accept"))
		exposition("# TYPE up gauge\nup 1\n# TYPE bad gauge\nbad NaN\n# TYPE c_total counter\nc_total{a=\"1\"} 2\n")(w, r)
	}))
	defer srv.Close()
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	s, err := NewScraper(ScrapeOptions{Common: Common{Sink: sink, Registerer: reg, Now: fixedClock}, Targets: []string{srv.URL + "/metrics"}, Source: "ne"})
	require.NoError(t, err)

	accepted, err := s.Scrape(context.Background(), srv.URL+"/metrics")
	require.NoError(t, err)
	assert.Equal(t, 2, accepted)
	assert.Contains(t, accept.Load(), "text/plain;version=0.0.4")
	assert.Equal(t, []etf.Metric{
		{Name: "c_total", Kind: etf.Counter, Value: 2, Tags: []etf.Tag{{Key: "a", Value: "1"}}, TimestampMs: fixedMs, Source: "ne"},
		{Name: "up", Kind: etf.Gauge, Value: 1, Tags: []etf.Tag{}, TimestampMs: fixedMs, Source: "ne"},
	}, sink.metrics())
	assert.InDelta(t, 1, counterValue(t, counterVec(t, reg, "pharos_ingest_records_refused_total").WithLabelValues(KindScrape, ReasonInvalid)), 0, "the NaN sample")
}

func TestScrapeFailures(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("/big", exposition(strings.Repeat("# padding comment line\n", 100)+"up 1\n"))
	mux.HandleFunc("/many", exposition("a 1\nb 1\nc 1\n"))
	mux.HandleFunc("/garbage", exposition("<html>not metrics</html>\n"))
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + l.Addr().String() + "/metrics"
	require.NoError(t, l.Close())

	sink := &memSink{}
	reg := prometheus.NewRegistry()
	s, err := NewScraper(ScrapeOptions{
		Common:       Common{Sink: sink, Registerer: reg},
		Targets:      []string{srv.URL},
		Timeout:      200 * time.Millisecond,
		MaxBodyBytes: 1000,
		MaxSamples:   2,
	})
	require.NoError(t, err)
	tests := []struct {
		path    string
		url     string
		wantErr error
		reason  string
	}{
		{path: "/500", wantErr: ErrScrapeStatus, reason: ReasonStatus},
		{path: "/big", wantErr: ErrScrapeTooLarge, reason: ReasonTooLarge},
		{path: "/many", wantErr: ErrTooManySamples, reason: ReasonTooMany},
		{path: "/garbage", wantErr: ErrExposition, reason: ReasonMalformed},
		{path: "/slow", wantErr: context.DeadlineExceeded, reason: ReasonUnreachable},
		{url: closedURL, wantErr: ErrScrapeFailed, reason: ReasonUnreachable},
	}
	requests := counterVec(t, reg, "pharos_ingest_requests_refused_total")
	for _, tt := range tests {
		t.Run(tt.path+tt.url, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = srv.URL + tt.path
			}
			before := counterValue(t, requests.WithLabelValues(KindScrape, tt.reason))
			n, err := s.Scrape(context.Background(), url)
			require.ErrorIs(t, err, tt.wantErr)
			var serr *ScrapeError
			require.ErrorAs(t, err, &serr)
			assert.Equal(t, url, serr.Target)
			assert.Zero(t, n)
			assert.InDelta(t, before+1, counterValue(t, requests.WithLabelValues(KindScrape, tt.reason)), 0)
		})
	}
	assert.Empty(t, sink.records(), "a failed scrape delivers nothing")
}

func TestNewScraperChecksOptions(t *testing.T) {
	sink := &memSink{}
	for _, targets := range [][]string{nil, {"localhost:9100"}, {"ftp://x/metrics"}, {"http://"}, {"http://a b/"}} {
		_, err := NewScraper(ScrapeOptions{Common: Common{Sink: sink}, Targets: targets})
		require.Error(t, err, "%q", targets)
	}
	s, err := NewScraper(ScrapeOptions{Common: Common{Sink: sink}, Targets: []string{"https://h:1/m"}, Interval: time.Second, Timeout: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, time.Second, s.timeout, "Timeout is capped at Interval")
}

// TestScraperRun scrapes two targets at a short interval, then stops with the context.
func TestScraperRun(t *testing.T) {
	var hits [2]atomic.Int64
	var srvs [2]*httptest.Server
	for i := range srvs {
		srvs[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			exposition(fmt.Sprintf("target %d\n", i))(w, r)
		}))
		defer srvs[i].Close()
	}
	sink := &memSink{}
	s, err := NewScraper(ScrapeOptions{
		Common:   Common{Sink: sink},
		Targets:  []string{srvs[0].URL, srvs[1].URL},
		Interval: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool { return hits[0].Load() >= 3 && hits[1].Load() >= 3 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	requireReturnsNil(t, done, 5*time.Second, "Run, after cancel,")
	assert.GreaterOrEqual(t, len(sink.records()), 6)
}

// TestScrapeNodeExporter scrapes Debian's prometheus-node-exporter, started on a loopback port. It
// fails when the exporter is not installed (scripts/test-deps.sh, run by make test, installs it):
// the recorded exposition is TestScrapeRecordedNodeExporter's, and this test has no subject
// without the real one.
func TestScrapeNodeExporter(t *testing.T) {
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Fatalf("prometheus-node-exporter is not installed (scripts/test-deps.sh installs it): %v", err)
	}
	url := startNodeExporter(t, bin)
	t.Logf("scraping a real %s at %s", bin, url)
	checkNodeExporterScrape(t, url)
}

// TestScrapeRecordedNodeExporter scrapes testdata/node_exporter.prom, recorded from that same
// exporter (node_exporter 1.5.0, Debian 12) and served by a local httptest server: the parsing
// of a known exposition, whatever the installed exporter's version.
func TestScrapeRecordedNodeExporter(t *testing.T) {
	checkNodeExporterScrape(t, serveRecordedNodeExporter(t))
}

func serveRecordedNodeExporter(t *testing.T) string {
	t.Helper()
	text, err := os.ReadFile("testdata/node_exporter.prom")
	require.NoError(t, err)
	srv := httptest.NewServer(exposition(string(text)))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// checkNodeExporterScrape scrapes a node exporter at url and checks some well-known families.
func checkNodeExporterScrape(t *testing.T, url string) {
	t.Helper()
	sink := &memSink{}
	s, err := NewScraper(ScrapeOptions{Common: Common{Sink: sink, Now: fixedClock}, Targets: []string{url}, Source: "node", Timeout: 10 * time.Second})
	require.NoError(t, err)
	accepted, err := s.Scrape(context.Background(), url)
	require.NoError(t, err)
	t.Logf("%d samples accepted", accepted)
	assert.Greater(t, accepted, 100)

	byName := map[string][]etf.Metric{}
	for _, m := range sink.metrics() {
		byName[m.Name] = append(byName[m.Name], m)
		require.NoError(t, m.Validate(etf.RecordLimits{}))
		require.Equal(t, "node", m.Source)
		for i := 1; i < len(m.Tags); i++ {
			require.Less(t, m.Tags[i-1].Key, m.Tags[i].Key, "tags of %s sorted", m.Name)
		}
	}
	require.Len(t, byName["node_load1"], 1)
	assert.Equal(t, etf.Gauge, byName["node_load1"][0].Kind)
	assert.Empty(t, byName["node_load1"][0].Tags)

	cpu := byName["node_cpu_seconds_total"]
	require.NotEmpty(t, cpu)
	assert.Equal(t, etf.Counter, cpu[0].Kind)
	assert.Equal(t, []string{"cpu", "mode"}, []string{cpu[0].Tags[0].Key, cpu[0].Tags[1].Key})

	// go_gc_duration_seconds is a summary: quantile gauges plus _sum and _count.
	gc := byName["go_gc_duration_seconds"]
	require.NotEmpty(t, gc)
	assert.Equal(t, etf.Gauge, gc[0].Kind)
	assert.Equal(t, "quantile", gc[0].Tags[0].Key)
	require.Len(t, byName["go_gc_duration_seconds_sum"], 1)
	require.Len(t, byName["go_gc_duration_seconds_count"], 1)
	assert.Equal(t, etf.Counter, byName["go_gc_duration_seconds_count"][0].Kind)
}

// startNodeExporter runs the exporter on a free loopback port until the test ends and returns its
// metrics URL once it answers.
func startNodeExporter(t *testing.T, bin string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	var out strings.Builder
	cmd := exec.Command(bin, "--web.listen-address="+addr)
	cmd.Stdout = &out
	cmd.Stderr = &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	url := "http://" + addr + "/metrics"
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("node exporter exited: %v\n%s", err, out.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node exporter did not answer at %s: %v", url, errors.Join(err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScrapeCutByShutdown: a scrape whose context ends is reported to the caller but not counted as a
// failure of the target, and Run with a finished context scrapes nothing.
func TestScrapeCutByShutdown(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		exposition("up 1\n")(w, r)
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	s, err := NewScraper(ScrapeOptions{Common: Common{Sink: &memSink{}, Registerer: reg}, Targets: []string{srv.URL}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Scrape(ctx, srv.URL)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, counterValue(t, counterVec(t, reg, "pharos_ingest_requests_refused_total").WithLabelValues(KindScrape, ReasonUnreachable)))
	require.NoError(t, s.Run(ctx))
	assert.Zero(t, hits.Load())
}

// TestParseExpositionDoesNotInventSumOrCount: a summary or histogram whose exposition lacks its _sum
// or _count line yields no such record. expfmt leaves the field unset and its getter answers 0, which
// would be delivered as a sample the target never exposed (a cumulative counter dropping to 0).
func TestParseExpositionDoesNotInventSumOrCount(t *testing.T) {
	def := recordDefaults{timestampMs: fixedMs, source: "prom"}
	names := func(ms []etf.Metric) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	for _, tt := range []struct{ text, want string }{
		{"# TYPE s summary\ns{quantile=\"0.5\"} 1\n", "s"},
		{"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_count 4\n", "s s_count"},
		{"# TYPE s summary\ns_sum 0\n", "s_sum"},
		{"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\n", "h_bucket"},
		{"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1.5\n", "h_bucket h_sum"},
		{"# TYPE h histogram\nh_count 0\n", "h_count"},
	} {
		got, err := parseExposition([]byte(tt.text), def, 100)
		require.NoError(t, err)
		assert.Equal(t, strings.Fields(tt.want), names(got), "%q", tt.text)
	}
}
