package ingest

import (
	"context"
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

func TestParseStatsDLine(t *testing.T) {
	tests := []struct {
		line    string
		want    etf.Metric
		wantErr error
	}{
		{line: "hits:1|c", want: etf.Metric{Name: "hits", Kind: etf.Counter, Value: 1}},
		{line: "hits:3|c|@0.5", want: etf.Metric{Name: "hits", Kind: etf.Counter, Value: 6}},
		{line: "hits:-2|c", want: etf.Metric{Name: "hits", Kind: etf.Counter, Value: -2}},
		{line: "hits:+2|c", want: etf.Metric{Name: "hits", Kind: etf.Counter, Value: 2}},
		{line: "temp:21.5|g", want: etf.Metric{Name: "temp", Kind: etf.Gauge, Value: 21.5}},
		{line: "temp:0|g|@0.1", want: etf.Metric{Name: "temp", Kind: etf.Gauge, Value: 0}},
		{line: "lat:320|ms|@0.1", want: etf.Metric{Name: "lat", Kind: etf.Histogram, Value: 320}},
		{line: "size:2.5e3|h", want: etf.Metric{Name: "size", Kind: etf.Histogram, Value: 2500}},
		{line: "size:7|d", want: etf.Metric{Name: "size", Kind: etf.Histogram, Value: 7}},
		{
			line: "api.req:1|c|#env:prod,region:eu-1,canary",
			want: etf.Metric{Name: "api.req", Kind: etf.Counter, Value: 1, Tags: []etf.Tag{{Key: "env", Value: "prod"}, {Key: "region", Value: "eu-1"}, {Key: "canary", Value: ""}}},
		},
		{
			line: "x:1|g|#url:http://a:80/b,z:",
			want: etf.Metric{Name: "x", Kind: etf.Gauge, Value: 1, Tags: []etf.Tag{{Key: "url", Value: "http://a:80/b"}, {Key: "z", Value: ""}}},
		},
		{
			line: "x:4|c|#a:b|@0.5|T1700000000|c:abc123",
			want: etf.Metric{Name: "x", Kind: etf.Counter, Value: 8, Tags: []etf.Tag{{Key: "a", Value: "b"}}, TimestampMs: fixedMs},
		},
		{line: "  spaced:1|c\r", want: etf.Metric{Name: "spaced", Kind: etf.Counter, Value: 1}},
		{line: "dup:1|c|#a:1,a:2", want: etf.Metric{Name: "dup", Kind: etf.Counter, Value: 1, Tags: []etf.Tag{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}}},
		{line: "ünï:1|c", want: etf.Metric{Name: "ünï", Kind: etf.Counter, Value: 1}},

		{line: "", wantErr: ErrStatsDSyntax},
		{line: "novalue", wantErr: ErrStatsDSyntax},
		{line: ":1|c", wantErr: ErrStatsDSyntax},
		{line: "a:1", wantErr: ErrStatsDSyntax},
		{line: "a:1|", wantErr: ErrStatsDSyntax},
		{line: "a:|c", wantErr: ErrStatsDSyntax},
		{line: "a:abc|c", wantErr: ErrStatsDSyntax},
		{line: "a:NaN|g", wantErr: ErrStatsDSyntax},
		{line: "a:Inf|c", wantErr: ErrStatsDSyntax},
		{line: "a:0x10|c", wantErr: ErrStatsDSyntax},
		{line: "a:1_000|c", wantErr: ErrStatsDSyntax},
		{line: "a:1e999|c", wantErr: ErrStatsDSyntax},
		{line: "a:1e308|c|@1e-10", wantErr: ErrStatsDSyntax},
		{line: "a:1:2|c", wantErr: ErrStatsDSyntax},
		{line: "a|b:1|c", wantErr: ErrStatsDSyntax},
		{line: "a:1|c||#x:y", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|#", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|#a:b,,c:d", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|#a:b|#c:d", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|#:", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|#:v", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|x", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|Tsoon", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|T-5", wantErr: ErrStatsDSyntax},
		{line: "a:1|c|T9223372036854775807", wantErr: ErrStatsDSyntax},
		{line: "users:42|s", wantErr: ErrStatsDType},
		{line: "a:1|x", wantErr: ErrStatsDType},
		{line: "a:1|C", wantErr: ErrStatsDType},
		{line: "_e{5,4}:title|text", wantErr: ErrStatsDType},
		{line: "_sc|svc|0", wantErr: ErrStatsDType},
		{line: "a:1|c|@0", wantErr: ErrSampleRate},
		{line: "a:1|c|@1.5", wantErr: ErrSampleRate},
		{line: "a:1|c|@-0.5", wantErr: ErrSampleRate},
		{line: "a:1|c|@", wantErr: ErrSampleRate},
		{line: "a:1|c|@x", wantErr: ErrSampleRate},
		{line: "a:1|c|@0.5|@0.5", wantErr: ErrStatsDSyntax},
		{line: "a:+3|g", wantErr: ErrGaugeDelta},
		{line: "a:-3|g", wantErr: ErrGaugeDelta},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := ParseStatsDLine([]byte(tt.line))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var lerr *LineError
				require.ErrorAs(t, err, &lerr)
				assert.Equal(t, tt.line, lerr.Line)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestStatsDLineErrorQuotesAtMost128Bytes(t *testing.T) {
	_, err := ParseStatsDLine([]byte(strings.Repeat("x", 1000)))
	var lerr *LineError
	require.ErrorAs(t, err, &lerr)
	assert.Len(t, lerr.Line, 128)
}

func TestStatsDReasons(t *testing.T) {
	for line, reason := range map[string]string{
		"a":          ReasonSyntax,
		"a:1|s":      ReasonUnsupported,
		"a:1|c|@2":   ReasonSampleRate,
		"a:-1|g":     ReasonGaugeDelta,
		"a:1|c|#a:b": "",
	} {
		_, err := ParseStatsDLine([]byte(line))
		if reason == "" {
			require.NoError(t, err)
			continue
		}
		assert.Equal(t, reason, reasonOf(err), line)
	}
}

// formatStatsDLine writes m back as a line; ParseStatsDLine must read it as m.
func formatStatsDLine(m etf.Metric) string {
	var b strings.Builder
	b.WriteString(m.Name)
	b.WriteByte(':')
	b.WriteString(strconv.FormatFloat(m.Value, 'g', -1, 64))
	b.WriteByte('|')
	switch m.Kind {
	case etf.Counter:
		b.WriteString("c")
	case etf.Gauge:
		b.WriteString("g")
	case etf.Histogram:
		b.WriteString("h")
	}
	if len(m.Tags) > 0 {
		b.WriteString("|#")
		for i, t := range m.Tags {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(t.Key)
			if t.Value != "" {
				b.WriteByte(':')
				b.WriteString(t.Value)
			}
		}
	}
	if m.TimestampMs != 0 {
		b.WriteString("|T")
		b.WriteString(strconv.FormatInt(m.TimestampMs/1000, 10))
	}
	return b.String()
}

// FuzzParseStatsDLine: the parser never panics; what it accepts has a valid kind, a finite value and
// a non-empty name, and reads back the same from its canonical form.
func FuzzParseStatsDLine(f *testing.F) {
	for _, seed := range []string{
		"hits:1|c", "hits:3|c|@0.5", "temp:21.5|g", "lat:320|ms|@0.1", "x:4|c|#a:b|@0.5|T1700000000|c:abc",
		"api.req:1|c|#env:prod,region:eu-1,canary", "a:-3|g", "_e{5,4}:title|text", "a:1e308|c|@1e-10",
		"a:1|c|#a:b,,c:d", "ünï:1|d", "a:.5e-3|h", "a:1|c|T9223372036854775", "a:1|c|#:",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseStatsDLine(line)
		if err != nil {
			var lerr *LineError
			if !errors.As(err, &lerr) {
				t.Fatalf("error %v is not a *LineError", err)
			}
			if reasonOf(err) == ReasonOther {
				t.Fatalf("error %v has no reason", err)
			}
			return
		}
		if m.Name == "" || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || m.Kind < etf.Counter || m.Kind > etf.Histogram {
			t.Fatalf("accepted %q as %+v", line, m)
		}
		again, err := ParseStatsDLine([]byte(formatStatsDLine(m)))
		if err != nil {
			t.Fatalf("%q parsed as %+v, whose line %q fails: %v", line, m, formatStatsDLine(m), err)
		}
		if !metricsEqual(m, again) {
			t.Fatalf("%q: %+v, then %+v", line, m, again)
		}
	})
}

// metricsEqual compares two metrics, nil and empty tags alike, values bit for bit.
func metricsEqual(a, b etf.Metric) bool {
	if a.Name != b.Name || a.Kind != b.Kind || math.Float64bits(a.Value) != math.Float64bits(b.Value) ||
		a.TimestampMs != b.TimestampMs || a.Source != b.Source || len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	return true
}

func TestStatsDHandlePacket(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Registerer: reg, Now: fixedClock}, MaxPacketBytes: 256})
	require.NoError(t, err)

	accepted, refused := s.HandlePacket([]byte("a:1|c\n\nbad line\nb:2|g|#k:v\r\nc:1|c|#k:1,k:2\nd:3|ms|T10\n"))
	assert.Equal(t, 3, accepted)
	assert.Equal(t, 2, refused)
	assert.Equal(t, []etf.Metric{
		{Name: "a", Kind: etf.Counter, Value: 1, TimestampMs: fixedMs, Source: "statsd"},
		{Name: "b", Kind: etf.Gauge, Value: 2, Tags: []etf.Tag{{Key: "k", Value: "v"}}, TimestampMs: fixedMs, Source: "statsd"},
		{Name: "d", Kind: etf.Histogram, Value: 3, TimestampMs: 10_000, Source: "statsd"},
	}, sink.metrics())

	refusedVec := counterVec(t, reg, "pharos_ingest_records_refused_total")
	assert.InDelta(t, 1, counterValue(t, refusedVec.WithLabelValues(KindStatsD, ReasonSyntax)), 0)
	assert.InDelta(t, 1, counterValue(t, refusedVec.WithLabelValues(KindStatsD, ReasonInvalid)), 0)
	assert.InDelta(t, 3, counterValue(t, counterVec(t, reg, "pharos_ingest_records_accepted_total").WithLabelValues(KindStatsD)), 0)

	// Exactly MaxPacketBytes passes; one byte more is refused whole.
	line := "e:1|c"
	packet := strings.Repeat(line+"\n", 256/(len(line)+1))
	packet += strings.Repeat("\n", 256-len(packet))
	accepted, refused = s.HandlePacket([]byte(packet))
	assert.Equal(t, 256/(len(line)+1), accepted)
	assert.Zero(t, refused)
	accepted, refused = s.HandlePacket([]byte(packet + "\n"))
	assert.Zero(t, accepted+refused)
	assert.InDelta(t, 1, counterValue(t, counterVec(t, reg, "pharos_ingest_requests_refused_total").WithLabelValues(KindStatsD, ReasonTooLarge)), 0)
}

func TestStatsDSinkFull(t *testing.T) {
	sink := &memSink{capacity: 1}
	reg := prometheus.NewRegistry()
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Registerer: reg}})
	require.NoError(t, err)
	accepted, refused := s.HandlePacket([]byte("a:1|c\nb:1|c\nc:1|c"))
	assert.Equal(t, 1, accepted)
	assert.Equal(t, 2, refused)
	assert.InDelta(t, 2, counterValue(t, counterVec(t, reg, "pharos_ingest_records_refused_total").WithLabelValues(KindStatsD, ReasonSinkFull)), 0)
}

func TestNewStatsDLimits(t *testing.T) {
	_, err := NewStatsD(StatsDOptions{Common: Common{Sink: &memSink{}}, MaxPacketBytes: MaxStatsDPacketBytes + 1})
	require.Error(t, err)
	_, err = NewStatsD(StatsDOptions{})
	require.Error(t, err)
}

// TestStatsDUDP sends real datagrams to a listener on a loopback port and stops it with its context.
func TestStatsDUDP(t *testing.T) {
	sink := &memSink{}
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink}, Source: "app", MaxPacketBytes: 512})
	require.NoError(t, err)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, conn) }()

	client, err := net.Dial("udp", conn.LocalAddr().String())
	require.NoError(t, err)
	defer client.Close()
	packets := []string{
		"req:1|c|#path:/a\nreq:1|c|#path:/b",
		"temp:20|g\nnonsense",
		strings.Repeat("x", 600), // over MaxPacketBytes
		"lat:12|ms|@0.5",
	}
	for _, p := range packets {
		_, err := client.Write([]byte(p))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(sink.records()) == 4 }, 5*time.Second, 5*time.Millisecond)
	names := []string{}
	for _, m := range sink.metrics() {
		names = append(names, m.Name)
		assert.Equal(t, "app", m.Source)
	}
	assert.Equal(t, []string{"req", "req", "temp", "lat"}, names)

	cancel()
	requireReturnsNil(t, served, 5*time.Second, "Serve, after cancel,")
}

func TestStatsDListenAndServe(t *testing.T) {
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: &memSink{}}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.NoError(t, s.ListenAndServe(ctx, "127.0.0.1:0"))
	require.Error(t, s.ListenAndServe(context.Background(), "256.0.0.1:1"))
}

// flakyPacketConn fails its first reads with a transient error, then hands out packets, then
// reports itself closed.
type flakyPacketConn struct {
	net.PacketConn // nil: only the methods below are used
	mu             sync.Mutex
	failures       int
	packets        [][]byte
	closed         bool
}

func (c *flakyPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return 0, nil, net.ErrClosed
	case c.failures > 0:
		c.failures--
		return 0, nil, &net.OpError{Op: "read", Net: "udp", Err: syscall.ECONNREFUSED}
	case len(c.packets) > 0:
		n := copy(p, c.packets[0])
		c.packets = c.packets[1:]
		return n, nil, nil
	}
	c.closed = true
	return 0, nil, net.ErrClosed
}

func (c *flakyPacketConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// A transient read error is counted and ingestion goes on; only a closed socket ends Serve.
func TestStatsDServeReadsOnAfterAReadError(t *testing.T) {
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Registerer: reg}})
	require.NoError(t, err)
	conn := &flakyPacketConn{failures: 3, packets: [][]byte{[]byte("a:1|c"), []byte("b:2|c")}}
	err = s.Serve(context.Background(), conn)
	require.ErrorIs(t, err, net.ErrClosed)
	assert.Len(t, sink.recs, 2)
	assert.InDelta(t, 3, counterValue(t, counterVec(t, reg, "pharos_ingest_requests_refused_total").WithLabelValues(KindStatsD, ReasonRead)), 0)
}

// While reads keep failing, a cancelled context still ends Serve at once.
func TestStatsDServeStopsDuringReadErrors(t *testing.T) {
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: &memSink{}, Registerer: prometheus.NewRegistry()}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, &flakyPacketConn{failures: 1 << 30}) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	requireReturnsNil(t, done, 2*time.Second, "Serve, cancelled during read errors,")
}
