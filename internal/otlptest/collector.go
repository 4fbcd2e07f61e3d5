package otlptest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// Collector is the OpenTelemetry Collector's own OTLP receiver (otlpreceiver v0.165.0, its
// OTLP/HTTP server and decoding), started in the test on a fixed address, with consumers that
// keep what arrives. answer, when set, is called for each request's data: an error from it is
// the receiver's answer (a gRPC status with InvalidArgument gives 400, Unavailable with
// RetryInfo 503 with Retry-After, as the Collector maps them).
type Collector struct {
	t    testing.TB
	addr string

	mu      sync.Mutex
	points  []Point
	logs    []LogRecord
	calls   []time.Time // every request that reached a consumer (data, not probes)
	answer  func() error
	running []component.Component
}

// Point is one data point as the Collector decoded it.
type Point struct {
	Name, Source, Kind string
	Value              float64
	Attrs              map[string]string
	Time               time.Time
	Monotonic          bool
	Temporality        string
}

// LogRecord is one log record as the Collector decoded it.
type LogRecord struct {
	EventName, Body, Severity, Source string
	SeverityNumber                    int32
	Attrs                             map[string]string
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// StartCollector starts a receiver on addr ("" picks one); t.Cleanup stops it.
func StartCollector(t testing.TB, addr string) *Collector {
	t.Helper()
	if addr == "" {
		addr = freeAddr(t)
	}
	c := &Collector{t: t, addr: addr}
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

// Endpoint is the receiver's base URL.
func (c *Collector) Endpoint() string { return "http://" + c.addr }

type nopHost struct{}

func (nopHost) GetExtensions() map[component.ID]component.Component { return nil }

// Start starts the receiver (again, after Stop) on its address.
func (c *Collector) Start() {
	c.t.Helper()
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = c.addr
	set := receiver.Settings{ID: component.NewID(f.Type()), BuildInfo: component.NewDefaultBuildInfo(),
		TelemetrySettings: component.TelemetrySettings{Logger: zap.NewNop(), TracerProvider: tracenoop.NewTracerProvider(),
			MeterProvider: metricnoop.NewMeterProvider(), Resource: pcommon.NewResource()}}
	mc, err := consumer.NewMetrics(c.consumeMetrics)
	if err != nil {
		c.t.Fatal(err)
	}
	lc, err := consumer.NewLogs(c.consumeLogs)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx := context.Background()
	mr, err := f.CreateMetrics(ctx, set, cfg, mc)
	if err != nil {
		c.t.Fatal(err)
	}
	lr, err := f.CreateLogs(ctx, set, cfg, lc)
	if err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The port may still be held for a moment after a stop.
		if err = mr.Start(ctx, nopHost{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("start the OTLP receiver on %s: %v", c.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := lr.Start(ctx, nopHost{}); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.running = []component.Component{mr, lr}
	c.mu.Unlock()
}

// Stop shuts the receiver down: its port refuses connections until Start.
func (c *Collector) Stop() {
	c.mu.Lock()
	running := c.running
	c.running = nil
	c.mu.Unlock()
	for _, r := range running {
		if err := r.Shutdown(context.Background()); err != nil {
			c.t.Errorf("shutdown: %v", err)
		}
	}
}

// SetAnswer sets the answer to each request with data (nil: accept).
func (c *Collector) SetAnswer(f func() error) {
	c.mu.Lock()
	c.answer = f
	c.mu.Unlock()
}

// called counts a request and returns the answer to give.
func (c *Collector) called() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, time.Now())
	if c.answer != nil {
		return c.answer()
	}
	return nil
}

func (c *Collector) consumeMetrics(_ context.Context, md pmetric.Metrics) error {
	if err := c.called(); err != nil {
		return err
	}
	var got []Point
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		src := ""
		if v, ok := rm.Resource().Attributes().Get("service.name"); ok {
			src = v.AsString()
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				p := Point{Name: m.Name(), Source: src, Kind: m.Type().String()}
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
					p.Monotonic, p.Temporality = m.Sum().IsMonotonic(), m.Sum().AggregationTemporality().String()
				default:
					c.t.Errorf("unexpected metric type %s", m.Type())
					continue
				}
				for l := 0; l < dps.Len(); l++ {
					dp := dps.At(l)
					q := p
					q.Value, q.Time, q.Attrs = dp.DoubleValue(), dp.Timestamp().AsTime(), attrsOf(dp.Attributes())
					got = append(got, q)
				}
			}
		}
	}
	c.mu.Lock()
	c.points = append(c.points, got...)
	c.mu.Unlock()
	return nil
}

func (c *Collector) consumeLogs(_ context.Context, ld plog.Logs) error {
	if err := c.called(); err != nil {
		return err
	}
	var got []LogRecord
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		src := ""
		if v, ok := rl.Resource().Attributes().Get("service.name"); ok {
			src = v.AsString()
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				got = append(got, LogRecord{EventName: lr.EventName(), Body: lr.Body().AsString(), Severity: lr.SeverityText(),
					SeverityNumber: int32(lr.SeverityNumber()), Source: src, Attrs: attrsOf(lr.Attributes())})
			}
		}
	}
	c.mu.Lock()
	c.logs = append(c.logs, got...)
	c.mu.Unlock()
	return nil
}

func attrsOf(m pcommon.Map) map[string]string {
	out := map[string]string{}
	m.Range(func(k string, v pcommon.Value) bool {
		out[k] = v.AsString()
		return true
	})
	return out
}

// Points returns the data points received so far, in order.
func (c *Collector) Points() []Point {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Point(nil), c.points...)
}

// Logs returns the log records received so far, in order.
func (c *Collector) Logs() []LogRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogRecord(nil), c.logs...)
}

// Calls returns when each request with data reached the consumers.
func (c *Collector) Calls() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.calls...)
}
