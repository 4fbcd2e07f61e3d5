// Package otlptest is for tests only: a Go program using the real OpenTelemetry SDK
// (sdk/metric with the otlpmetrichttp exporter) that sends a fixed set of metrics over OTLP/HTTP,
// the records docs/otel.md says they map to, and a proxy that turns the SDK's protobuf requests
// into OTLP/JSON ones (the Go SDK exports protobuf only), so both encodings are tested with the
// SDK's own output; and the Collector's own OTLP receiver (Collector, collector.go), which the
// OTLP transport's tests deliver to. Only tests import it: pharos-node links none of this.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Service is the service.name of the metrics Send sends: the records' source.
const Service = "otlp-e2e"

// Record is a record the Brain (or a sink) should get.
type Record struct {
	Name, Kind string
	Value      float64
	Tags       [][2]string
}

// Expected are the records Send's metrics map to, in the order of the export.
func Expected() []Record {
	route := [][2]string{{"code", "200"}, {"region", "eu"}, {"service.version", "1.2"}}
	le := func(v string) [][2]string { return append(append([][2]string{}, route...), [2]string{"le", v}) }
	return []Record{
		{"orders", "counter", 7, route},
		{"temperature", "gauge", 21.5, [][2]string{{"room", "b"}, {"service.version", "1.2"}}},
		{"queue.depth", "gauge", -2, [][2]string{{"service.version", "1.2"}}},
		{"latency_bucket", "histogram", 1, le("0.1")},
		{"latency_bucket", "histogram", 2, le("1")},
		{"latency_bucket", "histogram", 3, le("+Inf")},
		{"latency_sum", "histogram", 2.55, route},
		{"latency_count", "histogram", 3, route},
		{"latency_min", "histogram", 0.05, route},
		{"latency_max", "histogram", 2, route},
	}
}

// Options of Send.
type Options struct {
	Gzip    bool
	Headers map[string]string // e.g. Authorization
	TLS     *tls.Config       // with an https URL
}

// Send is the Go program: a MeterProvider whose periodic reader exports with otlpmetrichttp to
// url (http://host:port/v1/metrics), a counter, a gauge, an up-down counter and a histogram
// with attributes, and Shutdown, which makes the one export. It returns the export's error.
func Send(ctx context.Context, url string, o Options) error {
	opts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpointURL(url),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}), otlpmetrichttp.WithTimeout(10 * time.Second)}
	if o.Gzip {
		opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	}
	if o.Headers != nil {
		opts = append(opts, otlpmetrichttp.WithHeaders(o.Headers))
	}
	if o.TLS != nil {
		opts = append(opts, otlpmetrichttp.WithTLSClientConfig(o.TLS))
	}
	exp, err := otlpmetrichttp.New(ctx, opts...)
	if err != nil {
		return err
	}
	res := resource.NewSchemaless(attribute.String("service.name", Service), attribute.String("service.version", "1.2"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	meter := mp.Meter("otlptest")
	attrs := metric.WithAttributes(attribute.String("region", "eu"), attribute.Int("code", 200))
	orders, _ := meter.Int64Counter("orders")
	orders.Add(ctx, 2, attrs)
	orders.Add(ctx, 5, attrs)
	temp, _ := meter.Float64Gauge("temperature")
	temp.Record(ctx, 21.5, metric.WithAttributes(attribute.String("room", "b")))
	queue, _ := meter.Int64UpDownCounter("queue.depth")
	queue.Add(ctx, 4)
	queue.Add(ctx, -6)
	latency, _ := meter.Float64Histogram("latency", metric.WithExplicitBucketBoundaries(0.1, 1))
	for _, v := range []float64{0.05, 0.5, 2} {
		latency.Record(ctx, v, attrs)
	}
	return mp.Shutdown(ctx)
}

// Near reports whether two values are equal within rounding.
func Near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// JSONProxy serves OTLP/HTTP protobuf, forwards each request to target as OTLP/JSON (gzipped
// when gzipOut), with the request's other headers, and turns a 200 answer back into protobuf.
// Other answers pass through as they are.
func JSONProxy(target string, gzipOut bool) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, body, hdr, err := forwardJSON(r, target, gzipOut)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
}

func forwardJSON(r *http.Request, target string, gzipOut bool) (int, []byte, http.Header, error) {
	var src io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return 0, nil, nil, err
		}
		src = zr
	}
	raw, err := io.ReadAll(src)
	if err != nil {
		return 0, nil, nil, err
	}
	req := pmetricotlp.NewExportRequest()
	if err := req.UnmarshalProto(raw); err != nil {
		return 0, nil, nil, fmt.Errorf("proxy: %w", err)
	}
	js, err := req.MarshalJSON()
	if err != nil {
		return 0, nil, nil, err
	}
	out, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range r.Header {
		out.Header[k] = v
	}
	out.Header.Set("Content-Type", "application/json")
	out.Header.Del("Content-Encoding")
	if gzipOut {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(js)
		_ = zw.Close()
		js = buf.Bytes()
		out.Header.Set("Content-Encoding", "gzip")
	}
	out.Body = io.NopCloser(bytes.NewReader(js))
	out.ContentLength = int64(len(js))
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, body, resp.Header, nil
	}
	answer := pmetricotlp.NewExportResponse()
	if err := answer.UnmarshalJSON(body); err != nil {
		return 0, nil, nil, fmt.Errorf("proxy: the receiver's JSON answer: %w", err)
	}
	pb, err := answer.MarshalProto()
	if err != nil {
		return 0, nil, nil, err
	}
	hdr := resp.Header.Clone()
	hdr.Set("Content-Type", "application/x-protobuf")
	return http.StatusOK, pb, hdr, nil
}
