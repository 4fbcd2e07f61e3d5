package ingest

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

// TestStatsDGaugeChanges: a change adds to the series' last value (0 before any), an absolute
// value resets it, tags in another order are the same series, another tag set another series.
func TestStatsDGaugeChanges(t *testing.T) {
	sink := &memSink{}
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Now: fixedClock}})
	require.NoError(t, err)
	accepted, refused := s.HandlePacket([]byte("q:+3|g|#a:1,b:2\nq:-1|g|#b:2,a:1\nq:10|g|#a:1,b:2\nq:-12.5|g|#a:1,b:2\nq:+1|g\nq:-1e308|g|#z\nq:-1e308|g|#z"))
	assert.Equal(t, 6, accepted)
	assert.Equal(t, 1, refused, "the second -1e308 overflows")
	var values []float64
	for _, m := range sink.metrics() {
		assert.Equal(t, etf.Gauge, m.Kind)
		values = append(values, m.Value)
	}
	assert.Equal(t, []float64{3, 2, 10, -2.5, 1, -1e308}, values)
	assert.Equal(t, []etf.Tag{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}}, sink.metrics()[1].Tags, "tags as sent")
}

// TestStatsDSets: a set's distinct members are counted per flush, one Gauge per series, stamped
// with the flush's time; the next interval starts afresh.
func TestStatsDSets(t *testing.T) {
	sink := &memSink{}
	now := time.UnixMilli(fixedMs)
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Now: func() time.Time { return now }}})
	require.NoError(t, err)
	accepted, refused := s.HandlePacket([]byte("users:alice|s\nusers:bob|s|#app:x\nusers:alice|s\nusers:carol|s\nusers:bob|s|#app:x\nusers:|s"))
	assert.Equal(t, 5, accepted)
	assert.Equal(t, 1, refused, "an empty member is malformed")
	assert.Empty(t, sink.records(), "nothing before the flush")
	now = now.Add(10 * time.Second)
	s.Flush()
	assert.Equal(t, []etf.Metric{
		{Name: "users", Kind: etf.Gauge, Value: 2, TimestampMs: fixedMs + 10_000, Source: "statsd"},
		{Name: "users", Kind: etf.Gauge, Value: 1, Tags: []etf.Tag{{Key: "app", Value: "x"}}, TimestampMs: fixedMs + 10_000, Source: "statsd"},
	}, sink.metrics())
	s.Flush()
	assert.Len(t, sink.records(), 2, "an empty interval sends nothing")
	s.HandlePacket([]byte("users:dave|s"))
	s.Flush()
	require.Len(t, sink.records(), 3)
	assert.Equal(t, 1.0, sink.metrics()[2].Value)
}

// TestStatsDStateBounds: past MaxSeries a change of a new series and a new set are refused and
// counted (state_full), an absolute gauge still passes; past MaxSetMembers a new member is refused.
func TestStatsDStateBounds(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Registerer: reg}, MaxSeries: 2, MaxSetMembers: 3})
	require.NoError(t, err)
	accepted, refused := s.HandlePacket([]byte("a:1|g\nb:+1|g\nc:+1|g\nc:5|g\na:+1|g\ns1:x|s\ns2:x|s\ns3:x|s\ns1:y|s\ns2:y|s\ns2:z|s"))
	// Refused: c's change (2 gauges kept), s3 (2 sets), s2:y and s2:z (3 members).
	assert.Equal(t, 7, accepted)
	assert.Equal(t, 4, refused)
	assert.InDelta(t, 4, counterValue(t, counterVec(t, reg, "pharos_ingest_records_refused_total").WithLabelValues(KindStatsD, ReasonStateFull)), 0)
	var gauges []string
	for _, m := range sink.metrics() {
		gauges = append(gauges, fmt.Sprintf("%s=%v", m.Name, m.Value))
	}
	assert.Equal(t, []string{"a=1", "b=1", "c=5", "a=2"}, gauges)
}

// TestStatsDServeFlushesSets: Serve delivers the sets every FlushInterval and when it stops.
func TestStatsDServeFlushesSets(t *testing.T) {
	sink := &memSink{}
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink}, FlushInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, conn) }()
	client, err := net.Dial("udp", conn.LocalAddr().String())
	require.NoError(t, err)
	defer client.Close()
	_, err = client.Write([]byte("u:1|s\nu:2|s"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(sink.records()) == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2.0, sink.metrics()[0].Value)
	_, err = client.Write([]byte("u:3|s"))
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond) // read, most likely before the next tick
	cancel()
	requireReturnsNil(t, served, 5*time.Second, "Serve, after cancel,")
	var total float64
	for _, m := range sink.metrics() {
		total += m.Value
	}
	assert.Equal(t, 3.0, total, "the last member is flushed by a tick or at the stop")
}

// TestStatsDKernelDrops fills the socket's receive buffer while the listener is stuck in the sink,
// and checks that every datagram is either delivered or counted as dropped by the kernel, exactly.
func TestStatsDKernelDrops(t *testing.T) {
	release := make(chan struct{})
	var lines, probes atomic.Int64
	sink := SinkFunc(func(rec Record) error {
		<-release // closed once the socket has overflowed
		if rec.Metric.Name == "probe" {
			probes.Add(1)
		} else {
			lines.Add(1)
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Registerer: reg}})
	require.NoError(t, err)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, conn.SetReadBuffer(4096)) // room for a few datagrams only
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, conn) }()

	client, err := net.Dial("udp", conn.LocalAddr().String())
	require.NoError(t, err)
	defer client.Close()
	sent := 0
	for i := range 2000 {
		if _, err := client.Write(fmt.Appendf(nil, "n:%d|c", i)); err == nil {
			sent++
		}
	}
	close(release)
	drops := func() float64 {
		var m dto.Metric
		require.NoError(t, s.kernelDrops.Write(&m))
		return m.GetCounter().GetValue()
	}
	// The kernel's count reaches the listener with the next datagram queued after the drops:
	// probes carry it, sent until every datagram is accounted for (a probe may be dropped too
	// while the queue drains; it is then counted with the others).
	probesSent := 0
	accounted := func() bool {
		return drops() > 0 && float64(lines.Load()+probes.Load())+drops() == float64(sent+probesSent)
	}
	for try := 0; !accounted(); try++ {
		require.Less(t, try, 100, "datagrams not accounted for: sent %d+%d, delivered %d+%d, dropped %.0f",
			sent, probesSent, lines.Load(), probes.Load(), drops())
		if _, err := client.Write([]byte("probe:1|c")); err == nil {
			probesSent++
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	requireReturnsNil(t, served, 5*time.Second, "Serve, after cancel,")
	t.Logf("sent %d, delivered %d, kernel drops %.0f", sent, lines.Load(), drops())
	assert.Greater(t, drops(), 0.0)
	assert.True(t, accounted(), "every datagram delivered or counted as dropped")
	assert.InDelta(t, drops(), counterValue(t, s.kernelDrops), 0)
	families, err := reg.Gather()
	require.NoError(t, err)
	found := false
	for _, f := range families {
		found = found || f.GetName() == "pharos_ingest_statsd_kernel_drops_total"
	}
	assert.True(t, found, "exported")
}
