package ingest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/etf"
)

// cpuClock reads the CPU time (user + system) of this process: on a machine shared with other
// work, the benchmarks' wall time per op says little, their CPU per record much more.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU per record since start, for b.N ops of perOp records each, as
// cpu-ns/record (with the collector's share: it runs on other threads of the process).
func reportCPU(b *testing.B, start time.Duration, perOp int) float64 {
	ns := float64(cpuClock()-start) / float64(b.N) / float64(perOp)
	b.ReportMetric(ns, "cpu-ns/record")
	return ns
}

// encodingSink is what the daemon's sink does with a record, without a connection manager: it
// encodes each metric (etf.AppendMetric) into a reused buffer, as agent.Agent does into its
// arena. It takes batches (MetricsSink) or records one by one.
type encodingSink struct {
	mu      sync.Mutex
	buf     []byte
	records int
}

func (s *encodingSink) Deliver(rec Record) error {
	if rec.Metric == nil {
		return nil
	}
	_, err := s.DeliverMetrics([]etf.Metric{*rec.Metric})
	return err
}

func (s *encodingSink) DeliverMetrics(ms []etf.Metric) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ms {
		var err error
		if s.buf, err = etf.AppendMetric(s.buf[:0], &ms[i]); err != nil {
			return i, err
		}
	}
	s.records += len(ms)
	return len(ms), nil
}

// benchJSONBody is n metrics in the form scripts/ingestload sends: name, kind, value, three tags
// as an object, timestamp_ms.
func benchJSONBody(n int) []byte {
	var b bytes.Buffer
	if n > 1 {
		b.WriteByte('[')
	}
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"http.server.requests","kind":"counter","value":%d.5,"tags":{"host":"host-%d","method":"method-%d","status":"status-%d"},"timestamp_ms":1700000000123}`,
			i, i%7, (i+1)%7, (i+2)%7)
	}
	if n > 1 {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// discardWriter is an http.ResponseWriter that keeps the status only.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

// BenchmarkHTTPJSON is the CPU of the HTTP handler per ingested record, from a request in memory
// (no socket) to the records encoded by the sink: records/op is the request size, ns/record the
// figure to compare. The BEAM's figure for the same bodies is BenchmarkHTTPJSONVersusBEAM's.
func BenchmarkHTTPJSON(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			benchHTTPJSON(b, n, &encodingSink{})
		})
	}
}

func benchHTTPJSON(b *testing.B, n int, sink Sink) float64 {
	h, err := NewHandler(HTTPOptions{Common: Common{Sink: sink, Now: fixedClock}, MaxRecords: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	body := benchJSONBody(n)
	rd := bytes.NewReader(body)
	req, err := http.NewRequest(http.MethodPost, "http://pharos"+MetricsPath, rd)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	start := cpuClock()
	for b.Loop() {
		rd.Reset(body)
		req.ContentLength = int64(len(body))
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
	return reportCPU(b, start, n)
}

// benchStatsDPacket is n counter lines with three DogStatsD tags, as scripts/ingestload sends.
func benchStatsDPacket(n int) []byte {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("http.server.requests:%d|c|#host:host-%d,method:method-%d,status:status-%d", 1+i%3, i%7, (i+1)%7, (i+2)%7)
	}
	return []byte(strings.Join(lines, "\n"))
}

// BenchmarkStatsD is the CPU of the StatsD listener per line, from a packet in memory to the
// records encoded by the sink, for packets of 1 and 20 lines.
func BenchmarkStatsD(b *testing.B) {
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			s, err := NewStatsD(StatsDOptions{Common: Common{Sink: &encodingSink{}, Now: fixedClock}})
			if err != nil {
				b.Fatal(err)
			}
			packet := benchStatsDPacket(n)
			b.ReportAllocs()
			start := cpuClock()
			for b.Loop() {
				if accepted, _ := s.HandlePacket(packet); accepted != n {
					b.Fatalf("accepted %d of %d", accepted, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
			reportCPU(b, start, n)
		})
	}
}

// BenchmarkScrape is the CPU of one scrape of a recorded node_exporter exposition (1.5.0, 505
// samples) served on loopback, per sample, from the request to the records encoded by the
// sink. The server's share is in the figure too (it runs in this process); it is small beside
// expfmt's parsing.
func BenchmarkScrape(b *testing.B) {
	text, err := os.ReadFile("testdata/node_exporter.prom")
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(exposition(string(text)))
	defer srv.Close()
	sink := &encodingSink{}
	s, err := NewScraper(ScrapeOptions{Common: Common{Sink: sink, Now: fixedClock}, Targets: []string{srv.URL}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.client.CloseIdleConnections()
	samples, err := s.Scrape(context.Background(), srv.URL)
	if err != nil || samples < 500 {
		b.Fatalf("%d samples, %v", samples, err)
	}
	b.ReportAllocs()
	start := cpuClock()
	for b.Loop() {
		if n, err := s.Scrape(context.Background(), srv.URL); err != nil || n != samples {
			b.Fatalf("%d samples, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/record")
	reportCPU(b, start, samples)
}
