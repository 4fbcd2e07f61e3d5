package main

// pharos-node send: send N valid synthetic metrics to the Brain, each with the tag seq = 0..N-1,
// then print one JSON summary line. The metrics are encoded straight into the connection's
// buffer (the fast path); a final round trip proves the Brain's node received all of them.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/node"
)

// sendSummary is the JSON line send prints.
type sendSummary struct {
	Sent          int     `json:"sent"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	Mode          string  `json:"mode"`
	Source        string  `json:"source"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// metricAppender returns the function that appends metric number seq, as a message of the given
// delivery mode (WIRE.md), to a frame buffer.
func metricAppender(mode string, brainName gen.Atom, m *etf.Metric) (func(dst []byte) ([]byte, error), error) {
	switch mode {
	case "payload":
		return func(dst []byte) ([]byte, error) {
			start := len(dst)
			dst = node.AppendBinaryHeader(dst, 0)
			dst, err := etf.AppendMetric(dst, m)
			if err != nil {
				return dst, err
			}
			node.PatchBinaryLength(dst, start)
			return dst, nil
		}, nil
	case "term":
		return func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, m) }, nil
	case "subject":
		// {Name, Body}: Name the Brain's registered name, Body as in payload mode.
		atom, err := etf.Marshal(etf.Atom(brainName))
		if err != nil {
			return nil, err
		}
		return func(dst []byte) ([]byte, error) {
			dst = append(dst, 131, 104, 2) // version, SMALL_TUPLE_EXT, arity 2
			dst = append(dst, atom[1:]...)
			start := len(dst)
			dst = append(dst, 109, 0, 0, 0, 0) // BINARY_EXT, length patched below
			dst, err := etf.AppendMetric(dst, m)
			if err != nil {
				return dst, err
			}
			binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-5))
			return dst, nil
		}, nil
	}
	return nil, fmt.Errorf("%w: --mode %q: want payload, term or subject", errUsage, mode)
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var d distFlags
	d.register(fs)
	count := fs.Int("count", 0, "number of metrics to send (required)")
	rate := fs.Float64("rate", 0, "metrics per second; 0 means as fast as possible")
	mode := fs.String("mode", "payload", "delivery mode: payload, term or subject")
	source := fs.String("source", "pharos-send", "the metrics' source field")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "pharos-node send: %v\n", err)
		return exitCode(err)
	}
	if err := d.validate(); err != nil {
		return fail(err)
	}
	if *count <= 0 {
		return fail(fmt.Errorf("%w: --count must be positive", errUsage))
	}
	if *rate < 0 {
		return fail(fmt.Errorf("%w: --rate must not be negative", errUsage))
	}
	m := &etf.Metric{
		Name:   "pharos.synthetic",
		Kind:   etf.Gauge,
		Tags:   []etf.Tag{{Key: "host", Value: "pharos-send"}, {Key: "seq", Value: ""}},
		Source: *source,
	}
	appendMetric, err := metricAppender(*mode, gen.Atom(d.brainName), m)
	if err != nil {
		return fail(err)
	}
	m.Tags[1].Value = "0"
	if err := m.Validate(etf.RecordLimits{}); err != nil {
		return fail(err)
	}

	s, err := d.connect(ctx, stderr)
	if err != nil {
		return fail(err)
	}
	defer s.close()
	from := s.node.PID()

	cpu0, t0 := cpuSeconds(), time.Now()
	var interval time.Duration
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
	}
	seqBuf := make([]byte, 0, 20)
	for i := 0; i < *count; i++ {
		if interval > 0 {
			if wait := time.Until(t0.Add(time.Duration(i) * interval)); wait > 0 {
				select {
				case <-ctx.Done():
					return fail(ctx.Err())
				case <-time.After(wait):
				}
			}
		} else if i&1023 == 0 && ctx.Err() != nil {
			return fail(ctx.Err())
		}
		seqBuf = strconv.AppendInt(seqBuf[:0], int64(i), 10)
		m.Tags[1].Value = string(seqBuf)
		m.Value = float64(i)
		m.TimestampMs = time.Now().UnixMilli()
		if err := s.conn.SendAppend(from, s.target, appendMetric); err != nil {
			return fail(fmt.Errorf("after %d metrics: %w", i, err))
		}
	}
	// The round trip: once it returns, the Brain's node has received every metric.
	pctx, cancel := context.WithTimeout(ctx, d.timeout+time.Duration(*count/10000)*time.Second)
	defer cancel()
	if _, err := s.conn.Probe(pctx, s.target); err != nil {
		return fail(fmt.Errorf("after sending %d metrics: %w", *count, err))
	}
	elapsed := time.Since(t0).Seconds()
	sum := sendSummary{
		Sent: *count, Seconds: elapsed, RecordsPerSec: float64(*count) / elapsed,
		CPUSeconds: cpuSeconds() - cpu0, Mode: *mode, Source: *source,
	}
	line, _ := json.Marshal(sum)
	fmt.Fprintln(stdout, string(line))
	return 0
}
