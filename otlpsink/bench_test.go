package otlpsink_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/otlptest"
	"github.com/pharos-node/pharos-node/otlpsink"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRecords are n encoded gauges and counters with three tags each, from 50 names and 10
// hosts, as ingest/otlp's benchmark sends.
func benchRecords(b *testing.B, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		kind := etf.Gauge
		if i%2 == 1 {
			kind = etf.Counter
		}
		m := etf.Metric{Name: fmt.Sprintf("bench.metric.%d", i%50), Kind: kind, Value: float64(i) + 0.5,
			Tags: []etf.Tag{{Key: "host", Value: fmt.Sprintf("host-%d", i%10)}, {Key: "region", Value: "eu-west"},
				{Key: "shard", Value: fmt.Sprint(i % 16)}}, TimestampMs: 1_700_000_000_000 + int64(i), Source: "bench"}
		rec, err := etf.AppendMetric(nil, &m)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = rec
	}
	return out
}

// BenchmarkDeliver measures the OTLP transport: DeliverBatch of 1000 records (one request of
// 1000 points), records decoded, mapped, protobuf-encoded, compressed or not, posted over
// loopback HTTP and the answer read. The receiver is in the same process: "discard" reads the
// body and answers 200 (the transport's own cost, plus net/http's server side); "collector" is
// the Collector's otlpreceiver, which decodes it too (the pair's cost). Records per second and
// the process's CPU per record (user and system time, the garbage collector's included).
func BenchmarkDeliver(b *testing.B) {
	recs := benchRecords(b, 1000)
	discard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer discard.Close()
	for _, tc := range []struct {
		name        string
		collector   bool
		compression otlpsink.Compression
	}{
		{"discard/gzip", false, otlpsink.CompressionGzip},
		{"discard/none", false, otlpsink.CompressionNone},
		{"collector/gzip", true, otlpsink.CompressionGzip},
		{"collector/none", true, otlpsink.CompressionNone},
	} {
		b.Run(tc.name, func(b *testing.B) {
			endpoint := discard.URL
			if tc.collector {
				endpoint = otlptest.StartCollector(b, "").Endpoint()
			}
			s, err := otlpsink.New(otlpsink.Options{Endpoint: endpoint, Compression: tc.compression})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			tr, err := s.NewTransport(nil)
			if err != nil {
				b.Fatal(err)
			}
			rt := tr.(fsm.RequestTransport)
			ctx := context.Background()
			b.ResetTimer()
			cpu0, wall0 := cpuTime(), time.Now()
			for b.Loop() {
				if n, err := rt.DeliverBatch(ctx, recs); err != nil || n != len(recs) {
					b.Fatalf("delivered %d: %v", n, err)
				}
			}
			records := float64(b.N * len(recs))
			b.ReportMetric(records/time.Since(wall0).Seconds(), "records/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/records, "cpu-ns/record")
			b.ReportMetric(float64(s.Stats().Requests), "requests")
		})
	}
}
