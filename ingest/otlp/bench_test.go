package otlp_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/ingest/otlp"
)

// benchPoints is the number of data points (each one record) per request.
const benchPoints = 1000

// benchRequest is benchPoints points, half gauges, half cumulative counters, each with three
// attributes, under one resource with a service.name: the shape an SDK's export has.
func benchRequest() pmetricotlp.ExportRequest {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "bench")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ts := pcommon.Timestamp(1_700_000_000_000 * 1e6)
	for i := range benchPoints {
		m := ms.AppendEmpty()
		m.SetName(fmt.Sprintf("bench.metric.%d", i%50))
		var dp pmetric.NumberDataPoint
		if i%2 == 0 {
			dp = m.SetEmptyGauge().DataPoints().AppendEmpty()
		} else {
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dp = s.DataPoints().AppendEmpty()
		}
		dp.SetDoubleValue(float64(i) + 0.5)
		dp.SetTimestamp(ts)
		dp.Attributes().PutStr("host", fmt.Sprintf("host-%d", i%10))
		dp.Attributes().PutStr("region", "eu-west")
		dp.Attributes().PutInt("shard", int64(i%16))
	}
	return pmetricotlp.NewExportRequestFromMetrics(md)
}

// benchPharosJSON is the same records in the Pharos JSON of POST /v1/metrics.
func benchPharosJSON() []byte {
	parts := make([]string, benchPoints)
	for i := range benchPoints {
		kind := "gauge"
		if i%2 == 1 {
			kind = "counter"
		}
		parts[i] = fmt.Sprintf(`{"name":"bench.metric.%d","kind":"%s","value":%v,"tags":{"host":"host-%d","region":"eu-west","shard":"%d"},"timestamp_ms":1700000000000,"source":"bench"}`,
			i%50, kind, float64(i)+0.5, i%10, i%16)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

type countSink struct{ n int }

func (s *countSink) Deliver(ingest.Record) error { s.n++; return nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngest compares, in one run, the data points per second and the CPU per point of
// the OTLP receiver (protobuf and OTLP/JSON) and of the Pharos JSON endpoint, each request of
// 1000 points handled in process (decode, map, validate, hand to a counting sink; no socket).
func BenchmarkIngest(b *testing.B) {
	req := benchRequest()
	pb, err := req.MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name, ctype string
		body        []byte
		pharos      bool
	}{
		{"otlp-protobuf", otlp.ContentTypeProtobuf, pb, false},
		{"otlp-json", otlp.ContentTypeJSON, js, false},
		{"pharos-json", "application/json", benchPharosJSON(), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sink := &countSink{}
			var h http.Handler
			if tc.pharos {
				h, err = ingest.NewHandler(ingest.HTTPOptions{Common: ingest.Common{Sink: sink}, MaxBodyBytes: 4 << 20})
			} else {
				h, err = otlp.NewHandler(otlp.Options{Common: ingest.Common{Sink: sink}})
			}
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			cpu0, wall0 := cpuTime(), time.Now()
			b.ResetTimer()
			for range b.N {
				r := httptest.NewRequest(http.MethodPost, "/v1/metrics", bytes.NewReader(tc.body))
				r.Header.Set("Content-Type", tc.ctype)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body.String())
				}
			}
			b.StopTimer()
			points := float64(b.N) * benchPoints
			if sink.n != b.N*benchPoints {
				b.Fatalf("sink got %d records, want %v", sink.n, points)
			}
			b.ReportMetric(points/time.Since(wall0).Seconds(), "points/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/points, "cpu-ns/point")
		})
	}
}
