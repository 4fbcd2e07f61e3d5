package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pharos-node/pharos-node/etf"
)

// Defaults and bounds of StatsDOptions.
const (
	DefaultStatsDMaxPacketBytes = 8192
	MaxStatsDPacketBytes        = 65535 // the largest UDP payload
	DefaultStatsDSource         = "statsd"
	DefaultStatsDFlushInterval  = 10 * time.Second
	DefaultStatsDMaxSeries      = 10_000
	DefaultStatsDMaxSetMembers  = 100_000
)

// StatsDOptions configure a StatsD listener.
type StatsDOptions struct {
	Common
	// Source is the source of every record. Default DefaultStatsDSource.
	Source string
	// MaxPacketBytes is the largest datagram accepted; a longer one is refused whole (its lines may
	// have been cut). Default DefaultStatsDMaxPacketBytes, at most MaxStatsDPacketBytes.
	MaxPacketBytes int
	// FlushInterval is how often Serve delivers the count of each set's distinct members (and
	// starts the sets afresh). Default DefaultStatsDFlushInterval.
	FlushInterval time.Duration
	// MaxSeries bounds the gauges whose last value is kept (for changes, "+3"/"-3") and, apart, the
	// sets counted in one interval; a line that would need one more is refused (ErrStatsDState).
	// Default DefaultStatsDMaxSeries.
	MaxSeries int
	// MaxSetMembers bounds the distinct members of all sets in one interval. Default
	// DefaultStatsDMaxSetMembers.
	MaxSetMembers int
}

// StatsD receives StatsD lines over UDP. One goroutine (the one calling Serve) reads, parses and
// delivers, so records of one packet reach the sink in order.
type StatsD struct {
	p              *pipeline
	source         string
	maxPacketBytes int
	flushInterval  time.Duration
	kernelDrops    prometheus.Counter

	state   *statsdState
	batches sync.Pool // *statsdBatch
}

// statsdBatch is one packet's records on their way to the sink, used again by the next packet
// when the sink is a MetricsSink (which keeps none of them).
type statsdBatch struct {
	ms   []etf.Metric
	tags []etf.Tag
}

// NewStatsD returns a StatsD listener delivering to opts.Sink.
func NewStatsD(opts StatsDOptions) (*StatsD, error) {
	p, err := newPipeline(KindStatsD, opts.Common)
	if err != nil {
		return nil, err
	}
	s := &StatsD{p: p, source: opts.Source, maxPacketBytes: opts.MaxPacketBytes, flushInterval: opts.FlushInterval}
	if s.source == "" {
		s.source = DefaultStatsDSource
	}
	if s.maxPacketBytes <= 0 {
		s.maxPacketBytes = DefaultStatsDMaxPacketBytes
	}
	if s.maxPacketBytes > MaxStatsDPacketBytes {
		return nil, fmt.Errorf("ingest: statsd: MaxPacketBytes %d above %d", s.maxPacketBytes, MaxStatsDPacketBytes)
	}
	if s.flushInterval <= 0 {
		s.flushInterval = DefaultStatsDFlushInterval
	}
	maxSeries, maxMembers := opts.MaxSeries, opts.MaxSetMembers
	if maxSeries <= 0 {
		maxSeries = DefaultStatsDMaxSeries
	}
	if maxMembers <= 0 {
		maxMembers = DefaultStatsDMaxSetMembers
	}
	s.state = newStatsDState(maxSeries, maxMembers)
	if s.kernelDrops, err = registerCounter(opts.Registerer, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "pharos", Subsystem: "ingest", Name: "statsd_kernel_drops_total",
		Help: "StatsD datagrams the kernel dropped because the socket's receive buffer was full (SO_RXQ_OVFL).",
	})); err != nil {
		return nil, err
	}
	s.batches.New = func() any { return &statsdBatch{} }
	return s, nil
}

// ListenAndServe listens on the UDP address addr ("127.0.0.1:8125") and serves until ctx is done.
func (s *StatsD) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("ingest: statsd: %w", err)
	}
	return s.Serve(ctx, conn)
}

// Serve reads datagrams from conn until ctx is done, then closes conn, delivers the sets of the
// interval (Flush) and returns nil. Every FlushInterval it delivers the sets' counts. A read that
// fails for another reason than conn's closing (ErrStatsDRead) is counted as a refused request,
// logged within the rate limit, and followed by a pause that doubles from 1 ms up to
// statsdReadBackoffMax while reads keep failing: a transient socket error does not stop
// ingestion. If conn is closed by someone else, Serve returns an error. On a *net.UDPConn (Linux)
// it counts the datagrams the kernel dropped for want of buffer room. It starts no goroutine that
// outlives it.
func (s *StatsD) Serve(ctx context.Context, conn net.PacketConn) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	flushDone := make(chan struct{})
	flushCtx, stopFlush := context.WithCancel(ctx)
	go func() {
		defer close(flushDone)
		s.flushEvery(flushCtx)
	}()
	defer func() {
		stopFlush()
		<-flushDone
		s.Flush()
	}()

	read := s.reader(conn)
	buf := make([]byte, s.maxPacketBytes+1)
	var backoff time.Duration
	for {
		n, err := read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("ingest: statsd: connection closed: %w", err)
			}
			err = fmt.Errorf("%w: %w", ErrStatsDRead, err)
			s.p.refuseRequest(err)
			s.p.warn("statsd: read failed; reading on", err)
			backoff = min(max(2*backoff, time.Millisecond), statsdReadBackoffMax)
			pause := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				pause.Stop()
				return nil
			case <-pause.C:
			}
			continue
		}
		backoff = 0
		s.HandlePacket(buf[:n])
	}
}

// statsdReadBackoffMax is the longest pause Serve makes between failing reads.
const statsdReadBackoffMax = time.Second

func (s *StatsD) flushEvery(ctx context.Context) {
	t := time.NewTicker(s.flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Flush()
		}
	}
}

// reader returns how Serve reads a datagram from conn: with the kernel's count of dropped
// datagrams where the socket gives it, else with ReadFrom.
func (s *StatsD) reader(conn net.PacketConn) func([]byte) (int, error) {
	if udp, ok := conn.(*net.UDPConn); ok {
		if r := dropCountingReader(udp, s.kernelDrops); r != nil {
			return r
		}
	}
	return func(b []byte) (int, error) {
		n, _, err := conn.ReadFrom(b)
		return n, err
	}
}

// HandlePacket parses and delivers the lines of one datagram and returns how many were accepted
// (delivered, or taken into a set until the next Flush) and how many refused (malformed, invalid,
// over the state's bounds, or not taken by the sink). Empty lines are skipped. A packet over
// MaxPacketBytes is refused whole and counts as zero lines. Serve calls it for each datagram; it
// is exported for callers that read datagrams themselves. It is safe for concurrent use.
func (s *StatsD) HandlePacket(packet []byte) (accepted, refused int) {
	if len(packet) > s.maxPacketBytes {
		err := fmt.Errorf("%w: more than %d bytes", ErrPacketTooLarge, s.maxPacketBytes)
		s.p.refuseRequest(err)
		s.p.warn("statsd: packet refused", err)
		return 0, 0
	}
	// With a MetricsSink, the records' strings are the packet's bytes and the batch is used
	// again: the sink keeps neither. Otherwise both are the records' own.
	borrow := s.p.batch != nil
	b := &statsdBatch{}
	if borrow {
		b = s.batches.Get().(*statsdBatch)
		defer func() {
			clear(b.ms)
			clear(b.tags)
			b.ms, b.tags = b.ms[:0], b.tags[:0]
			s.batches.Put(b)
		}()
	}
	now := s.p.nowMs()
	var prev *etf.Metric
	for rest, more := packet, true; more; {
		var line []byte
		line, rest, more = bytes.Cut(rest, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		start := len(b.tags)
		l, tags, err := parseStatsDLine(line, borrow, b.tags)
		b.tags = tags
		if err != nil {
			b.tags = b.tags[:start]
			s.p.refuse(err)
			s.p.warn("statsd: malformed line", err)
			refused++
			continue
		}
		if l.m.TimestampMs == 0 {
			l.m.TimestampMs = now
		}
		l.m.Source = s.source
		if err := s.take(&l, prev); err != nil {
			b.tags = b.tags[:start]
			s.p.warn("statsd: line refused", err)
			refused++
			continue
		}
		if l.typ == lineSet {
			accepted++
			continue
		}
		b.ms = append(b.ms, l.m)
		prev = &b.ms[len(b.ms)-1]
	}
	accepted += s.p.deliverMetrics(b.ms, func(_ int, err error) {
		s.p.warn("statsd: line refused", err)
		refused++
	})
	return accepted, refused
}

// take validates a parsed line (after prev, the packet's last valid record) and applies it to the
// state: a gauge's value is kept, a change becomes the new absolute value, a set member is added.
// It counts a refusal.
func (s *StatsD) take(l *statsdLine, prev *etf.Metric) error {
	if err := s.p.validateMetric(&l.m, prev); err != nil {
		return err
	}
	var err error
	switch {
	case l.typ == lineSet:
		err = s.state.addMember(&l.m, l.member)
	case l.m.Kind == etf.Gauge:
		l.m.Value, err = s.state.setGauge(&l.m, l.typ == lineDelta)
	}
	if err != nil {
		s.p.refuse(err)
	}
	return err
}

// Flush delivers, for each set of the interval, a Gauge of its count of distinct members (named
// and tagged as the set's lines, stamped with the time of the flush), and starts every set afresh.
// Serve calls it every FlushInterval and when it stops; a caller of HandlePacket calls it itself.
func (s *StatsD) Flush() {
	ms := s.state.takeSets(s.p.nowMs(), s.source)
	s.p.deliverMetrics(ms, func(_ int, err error) { s.p.warn("statsd: set count refused", err) })
}
