package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults and bounds of StatsDOptions.
const (
	DefaultStatsDMaxPacketBytes = 8192
	MaxStatsDPacketBytes        = 65535 // the largest UDP payload
	DefaultStatsDSource         = "statsd"
)

// StatsDOptions configure a StatsD listener.
type StatsDOptions struct {
	Common
	// Source is the source of every record. Default DefaultStatsDSource.
	Source string
	// MaxPacketBytes is the largest datagram accepted; a longer one is refused whole (its lines may
	// have been cut). Default DefaultStatsDMaxPacketBytes, at most MaxStatsDPacketBytes.
	MaxPacketBytes int
}

// StatsD receives StatsD lines over UDP. One goroutine (the one calling Serve) reads, parses and
// delivers, so records of one packet reach the sink in order.
type StatsD struct {
	p              *pipeline
	source         string
	maxPacketBytes int
}

// NewStatsD returns a StatsD listener delivering to opts.Sink.
func NewStatsD(opts StatsDOptions) (*StatsD, error) {
	p, err := newPipeline(KindStatsD, opts.Common)
	if err != nil {
		return nil, err
	}
	s := &StatsD{p: p, source: opts.Source, maxPacketBytes: opts.MaxPacketBytes}
	if s.source == "" {
		s.source = DefaultStatsDSource
	}
	if s.maxPacketBytes <= 0 {
		s.maxPacketBytes = DefaultStatsDMaxPacketBytes
	}
	if s.maxPacketBytes > MaxStatsDPacketBytes {
		return nil, fmt.Errorf("ingest: statsd: MaxPacketBytes %d above %d", s.maxPacketBytes, MaxStatsDPacketBytes)
	}
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

// Serve reads datagrams from conn until ctx is done, then closes conn and returns nil. A read
// that fails for another reason than conn's closing (ErrStatsDRead) is counted as a refused
// request, logged within the rate limit, and followed by a pause that doubles from 1 ms up to
// statsdReadBackoffMax while reads keep failing: a transient socket error does not stop
// ingestion. If conn is closed by someone else, Serve returns an error. It starts no goroutine
// that outlives it.
func (s *StatsD) Serve(ctx context.Context, conn net.PacketConn) error {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	buf := make([]byte, s.maxPacketBytes+1)
	var backoff time.Duration
	for {
		n, _, err := conn.ReadFrom(buf)
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

// HandlePacket parses and delivers the lines of one datagram and returns how many were accepted and
// how many refused (malformed, invalid, or not taken by the sink). Empty lines are skipped. A packet
// over MaxPacketBytes is refused whole and counts as zero lines. Serve calls it for each datagram;
// it is exported for callers that read datagrams themselves. It is safe for concurrent use.
func (s *StatsD) HandlePacket(packet []byte) (accepted, refused int) {
	if len(packet) > s.maxPacketBytes {
		err := fmt.Errorf("%w: more than %d bytes", ErrPacketTooLarge, s.maxPacketBytes)
		s.p.refuseRequest(err)
		s.p.warn("statsd: packet refused", err)
		return 0, 0
	}
	now := s.p.nowMs()
	for line := range bytes.SplitSeq(packet, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := ParseStatsDLine(line)
		if err != nil {
			s.p.refuse(err)
			s.p.warn("statsd: malformed line", err)
			refused++
			continue
		}
		if m.TimestampMs == 0 {
			m.TimestampMs = now
		}
		m.Source = s.source
		if err := s.p.deliverMetric(m); err != nil {
			s.p.warn("statsd: line refused", err)
			refused++
			continue
		}
		accepted++
	}
	return accepted, refused
}
