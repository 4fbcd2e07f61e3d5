package otlpsink_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/testlog"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/otlptest"
	"github.com/pharos-node/pharos-node/otlpsink"
)

// testDelivery is a manager configuration with short timers, for tests.
func testDelivery() fsm.Config {
	c := fsm.DefaultConfig()
	c.BaseBackoff = 100 * time.Millisecond
	c.MaxBackoff = 500 * time.Millisecond
	c.FlushInterval = 20 * time.Millisecond
	c.DrainInterval = 20 * time.Millisecond
	return c
}

// testLogger writes to t.Log, and nowhere once the test has ended.
func testLogger(t *testing.T) zerolog.Logger { return testlog.New(t, zerolog.InfoLevel) }

// startAgent starts an agent delivering to endpoint through an otlpsink.Sink.
func startAgent(t *testing.T, endpoint string, opts agent.Options, sopts otlpsink.Options) (*agent.Agent, *otlpsink.Sink) {
	t.Helper()
	sopts.Endpoint = endpoint
	sopts.Logger = testLogger(t)
	sink, err := otlpsink.New(sopts)
	require.NoError(t, err)
	opts.Sink = sink
	opts.NodeName = "otlpsink_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "@127.0.0.1"
	opts.Logger = sopts.Logger
	if opts.Delivery == (fsm.Config{}) {
		opts.Delivery = testDelivery()
	}
	a, err := agent.Start(context.Background(), opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(ctx)
		sink.Close()
	})
	return a, sink
}

// seqMetric is record i of a numbered series: its value is i.
func seqMetric(i int) etf.Metric {
	return etf.Metric{Name: "seq", Kind: etf.Gauge, Value: float64(i), TimestampMs: 1_700_000_000_000 + int64(i),
		Source: "otlpsink-test", Tags: []etf.Tag{{Key: "i", Value: strconv.Itoa(i)}}}
}

// waitPoints waits until the collector holds n points.
func waitPoints(t *testing.T, c *otlptest.Collector, n int, within time.Duration) []otlptest.Point {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := c.Points()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// values are the points' values as ints.
func values(ps []otlptest.Point) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = int(p.Value)
	}
	return out
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestCollectorReceivesRecords: metrics of every kind and an alert reach the Collector's own
// OTLP receiver as the mapping of docs/otel.md says.
func TestCollectorReceivesRecords(t *testing.T) {
	c := otlptest.StartCollector(t, "")
	a, sink := startAgent(t, c.Endpoint(), agent.Options{}, otlpsink.Options{})
	ms := []etf.Metric{
		{Name: "cpu.load", Kind: etf.Gauge, Value: 0.42, TimestampMs: 1_700_000_000_123, Source: "web-1",
			Tags: []etf.Tag{{Key: "host", Value: "a"}, {Key: "dc", Value: "eu"}}},
		{Name: "http.requests", Kind: etf.Counter, Value: 1234, TimestampMs: 1_700_000_000_124, Source: "web-1"},
		{Name: "latency_bucket", Kind: etf.Histogram, Value: 7, TimestampMs: 1_700_000_000_125, Source: "web-2",
			Tags: []etf.Tag{{Key: "le", Value: "0.5"}}},
		{Name: "statsd.delta", Kind: etf.Counter, Value: -3, TimestampMs: 1_700_000_000_126, Source: "web-2"},
	}
	n, err := a.DeliverMetrics(ms)
	require.NoError(t, err)
	require.Equal(t, len(ms), n)
	require.NoError(t, a.DeliverAlert(etf.Alert{Name: "disk_full", Severity: etf.Critical, Message: "/var at 99%",
		TimestampMs: 1_700_000_000_200, Source: "web-1", Tags: []etf.Tag{{Key: "mount", Value: "/var"}}}))

	got := waitPoints(t, c, len(ms), 10*time.Second)
	eventually(t, func() bool { return sink.Stats().Sent == uint64(len(ms)+1) }, 10*time.Second)
	require.Len(t, got, len(ms))
	assert.Equal(t, otlptest.Point{Name: "cpu.load", Source: "web-1", Kind: "Gauge", Value: 0.42,
		Attrs: map[string]string{"host": "a", "dc": "eu"}, Time: time.UnixMilli(1_700_000_000_123).UTC()}, got[0])
	assert.Equal(t, otlptest.Point{Name: "http.requests", Source: "web-1", Kind: "Sum", Value: 1234, Attrs: map[string]string{},
		Time: time.UnixMilli(1_700_000_000_124).UTC(), Monotonic: true, Temporality: "Cumulative"}, got[1])
	assert.Equal(t, otlptest.Point{Name: "latency_bucket", Source: "web-2", Kind: "Gauge", Value: 7,
		Attrs: map[string]string{"le": "0.5"}, Time: time.UnixMilli(1_700_000_000_125).UTC()}, got[2])
	assert.Equal(t, otlptest.Point{Name: "statsd.delta", Source: "web-2", Kind: "Sum", Value: -3, Attrs: map[string]string{},
		Time: time.UnixMilli(1_700_000_000_126).UTC(), Monotonic: false, Temporality: "Cumulative"}, got[3])

	deadline := time.Now().Add(10 * time.Second)
	for len(c.Logs()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logs := c.Logs()
	require.Len(t, logs, 1)
	assert.Equal(t, otlptest.LogRecord{EventName: "disk_full", Body: "/var at 99%", Severity: "critical", SeverityNumber: 17,
		Source: "web-1", Attrs: map[string]string{"mount": "/var", "alert.name": "disk_full"}}, logs[0])

	s := sink.Stats()
	assert.Equal(t, uint64(len(ms)+1), s.Sent)
	assert.Empty(t, s.Dropped)
	assert.Equal(t, fsm.Streaming, a.State())
	assert.Zero(t, a.Stats().PossiblyLost, "an answered request is a receipt")
	assert.Zero(t, a.Stats().Manager.ConfirmRounds, "no confirmation round trips: the transport is no Confirmer")
}

// TestCollectorStoppedTenSeconds: the receiver stops for 10 s while records keep coming (more
// than the manager keeps in RAM: the rest goes to the spill directory); restarted on the same
// port, it gets every record, oldest first, none lost, none twice.
func TestCollectorStoppedTenSeconds(t *testing.T) {
	c := otlptest.StartCollector(t, "")
	cfg := testDelivery()
	cfg.MaxPending = 500
	a, sink := startAgent(t, c.Endpoint(), agent.Options{Delivery: cfg, RingRecords: 1000, SpillDir: t.TempDir()},
		otlpsink.Options{MaxPoints: 200})
	next := 0
	deliver := func(n int) {
		for range n {
			require.NoError(t, a.DeliverMetric(seqMetric(next)))
			next++
		}
	}
	deliver(300)
	require.Len(t, waitPoints(t, c, 300, 10*time.Second), 300)

	c.Stop()
	stopped := time.Now()
	for time.Since(stopped) < 10*time.Second {
		deliver(40)
		time.Sleep(50 * time.Millisecond)
	}
	held := a.Stats()
	t.Logf("after 10 s without a receiver: %d records delivered, state %s, ring %d, disk %d", next, held.State,
		held.RingRecords, held.SpillRecords)
	assert.NotEqual(t, fsm.Streaming, held.State)
	assert.Greater(t, held.SpillRecords, 0, "the outage outgrew the ring: records went to disk")
	assert.Equal(t, next-300, held.RingRecords+held.SpillRecords, "every record of the outage is held")
	c.Start()
	deliver(100)

	got := waitPoints(t, c, next, 30*time.Second)
	require.Equal(t, seq(0, next), values(got), "every record, oldest first, once")
	eventually(t, func() bool { return sink.Stats().Sent == uint64(next) }, 5*time.Second)
	assert.Equal(t, uint64(next), sink.Stats().Sent)
	assert.Empty(t, sink.Stats().Dropped)
	assert.Zero(t, a.Stats().Dropped)
	assert.Zero(t, a.Stats().PossiblyLost)
}

// TestCollectorBadRequestDrops: a receiver answering 400 drops that request's records, counted
// with the reason; the manager goes on and the next records arrive.
func TestCollectorBadRequestDrops(t *testing.T) {
	c := otlptest.StartCollector(t, "")
	a, sink := startAgent(t, c.Endpoint(), agent.Options{}, otlpsink.Options{MaxPoints: 50})
	refuse := true
	c.SetAnswer(func() error {
		if refuse {
			refuse = false
			return status.Error(codes.InvalidArgument, "this request is refused")
		}
		return nil
	})
	n, err := a.DeliverMetrics(metrics(0, 50)) // one request of 50: refused
	require.NoError(t, err)
	require.Equal(t, 50, n)
	deadline := time.Now().Add(10 * time.Second)
	for sink.Stats().Dropped[otlpsink.ReasonStatus(400)] == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	_, err = a.DeliverMetrics(metrics(50, 80))
	require.NoError(t, err)
	got := waitPoints(t, c, 30, 10*time.Second)
	assert.Equal(t, seq(50, 80), values(got))
	eventually(t, func() bool { return sink.Stats().Sent == 30 }, 5*time.Second) // counted once answered
	s := sink.Stats()
	assert.Equal(t, map[string]uint64{"http_400": 50}, s.Dropped)
	assert.Equal(t, uint64(30), s.Sent)
	assert.Equal(t, fsm.Streaming, a.State())
	assert.Zero(t, a.Stats().Reconnects, "a dropped request is no failure of the connection")
}

// eventually waits until cond holds, or fails the test after within.
func eventually(t *testing.T, cond func() bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func metrics(from, to int) []etf.Metric {
	out := make([]etf.Metric, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, seqMetric(i))
	}
	return out
}

// TestCollectorRetryAfterHonoured: the receiver answers 503 with Retry-After: 2 (the Collector's
// answer to an Unavailable error with RetryInfo); no request, the probe included, reaches it
// before the 2 s have passed, and then every record arrives, none lost.
func TestCollectorRetryAfterHonoured(t *testing.T) {
	c := otlptest.StartCollector(t, "")
	target, err := url.Parse(c.Endpoint())
	require.NoError(t, err)
	var mu sync.Mutex
	var seen []time.Time // every request through the proxy, probes included
	var refusedAt time.Time
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.StatusCode == http.StatusServiceUnavailable {
			mu.Lock()
			refusedAt = time.Now()
			mu.Unlock()
		}
		return nil
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, time.Now())
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	a, sink := startAgent(t, front.URL, agent.Options{}, otlpsink.Options{MaxPoints: 20})
	require.Equal(t, 0, len(waitPoints(t, c, 1, 300*time.Millisecond)))

	busy := true
	c.SetAnswer(func() error {
		if !busy {
			return nil
		}
		busy = false
		st, err := status.New(codes.Unavailable, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(2 * time.Second)})
		if err != nil {
			return err
		}
		return st.Err()
	})
	_, err = a.DeliverMetrics(metrics(0, 20))
	require.NoError(t, err)
	got := waitPoints(t, c, 20, 15*time.Second)
	require.Equal(t, seq(0, 20), values(got))

	mu.Lock()
	defer mu.Unlock()
	require.False(t, refusedAt.IsZero(), "the receiver answered 503")
	var after []time.Duration
	for _, at := range seen {
		if at.After(refusedAt) {
			after = append(after, at.Sub(refusedAt))
		}
	}
	require.NotEmpty(t, after)
	t.Logf("requests after the 503: %v", after)
	assert.GreaterOrEqual(t, after[0], 2*time.Second-50*time.Millisecond, "a request came before Retry-After elapsed")
	s := sink.Stats()
	assert.Equal(t, uint64(1), s.Throttled)
	assert.Empty(t, s.Dropped)
}
