package main

// pharos-node send: send N valid synthetic metrics to the Brain, each with the tag seq = 0..N-1,
// then print one JSON summary line. In the payload, term and subject modes the metrics are
// encoded straight into the connection's buffer (the fast path); a final round trip proves the
// Brain's node received all of them. The acked mode goes through the agent (the daemon's
// connection manager); see runSendAcked.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/spill"
)

// clockEvery: the generated metrics' timestamps are read from the clock once per this many
// records (a fraction of a millisecond at the rates send reaches; reading it for each record
// cost more than encoding the record).
const clockEvery = 256

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
// delivery mode (docs/wire.md), to a frame buffer.
func metricAppender(mode string, brainName gen.Atom, m *etf.Metric) (func(dst []byte) ([]byte, error), error) {
	switch mode {
	case "acked":
		return nil, nil // runSendAcked encodes through the agent
	case "payload":
		// A distribution message's payload starts with the version byte.
		return func(dst []byte) ([]byte, error) { return etf.AppendMetricPayload(append(dst, etf.TagVersion), m) }, nil
	case "term":
		return func(dst []byte) ([]byte, error) { return etf.AppendMetric(dst, m) }, nil
	case "subject":
		// {Name, Body}: Name the Brain's registered name, Body as in payload mode.
		head, err := etf.SubjectHead(string(brainName))
		if err != nil {
			return nil, err
		}
		return func(dst []byte) ([]byte, error) { return etf.AppendMetricPayload(append(dst, head...), m) }, nil
	}
	return nil, fmt.Errorf("%w: --brain.mode %q: want payload, term, subject or acked", errUsage, mode)
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("send")
	d := distFlags{command: "send"}
	d.register(fs)
	count := fs.Int("count", 0, "number of metrics to send: `N` (required)")
	rate := fs.Float64("rate", 0, "metrics per second (`RATE`); 0 means as fast as possible")
	source := fs.String("source", "pharos-send", "the metrics' source field (`NAME`)")
	var ack ackedSendFlags
	ack.register(fs, &d.cfg)
	if code, done := parseFlags("send", fs, args, stdout, stderr); done {
		return code
	}
	mode := &d.cfg.Brain.Mode
	fail := func(err error) int {
		if errors.Is(err, errUsage) {
			return usageError(stderr, "send", err)
		}
		fmt.Fprintf(stderr, "pharos-node send: %v\n", err)
		return exitCode(err)
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0)))
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
	appendMetric, err := metricAppender(*mode, gen.Atom(d.cfg.Brain.Name), m)
	if err != nil {
		return fail(err)
	}
	m.Tags[1].Value = "0"
	if err := m.Validate(etf.RecordLimits{}); err != nil {
		return fail(err)
	}
	if *mode == "acked" {
		if *rate > 0 {
			return fail(fmt.Errorf("%w: --rate is not supported with --brain.mode acked", errUsage))
		}
		return runSendAcked(ctx, &d, &ack, *count, m, stdout, stderr)
	}
	if d.cfg.Spill.Dir != "" {
		return fail(fmt.Errorf("%w: --spill.dir needs --brain.mode acked", errUsage))
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
		if i%clockEvery == 0 {
			m.TimestampMs = time.Now().UnixMilli()
		}
		if err := s.conn.SendAppend(ctx, from, s.target, appendMetric); err != nil {
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

// ackedSendFlags are the flags of `send --brain.mode acked` that are not settings of run.
type ackedSendFlags struct {
	maxUnacked int
}

// ackedKeys are the settings of run that `send --brain.mode acked` takes, with the spellings it
// had before (hidden aliases for a release).
func ackedKeys() ([]string, map[string]string) {
	return []string{"brain.mode", "spill.dir", "spill.sync", "delivery.batch_size", "delivery.batch_delay", "delivery.window",
			"delivery.ack_timeout", "delivery.base_backoff", "delivery.max_backoff"},
		map[string]string{"mode": "brain.mode", "spill-dir": "spill.dir", "spill-sync": "spill.sync",
			"batch-size": "delivery.batch_size", "batch-delay": "delivery.batch_delay", "window": "delivery.window",
			"ack-timeout": "delivery.ack_timeout", "base-backoff": "delivery.base_backoff", "max-backoff": "delivery.max_backoff"}
}

// register binds the acked flags into cfg, with send's own defaults: a short reconnect backoff
// and fsm's acked defaults.
func (f *ackedSendFlags) register(fs *flag.FlagSet, cfg *config.Config) {
	def := fsm.DefaultAckedConfig()
	cfg.Delivery.BatchSize, cfg.Delivery.Window = def.BatchSize, def.Window
	cfg.Delivery.BatchDelay, cfg.Delivery.AckTimeout = config.Duration(def.BatchDelay), config.Duration(def.AckTimeout)
	cfg.Delivery.BaseBackoff, cfg.Delivery.MaxBackoff = config.Duration(100*time.Millisecond), config.Duration(2*time.Second)
	keys, aliases := ackedKeys()
	if err := config.Bind(fs, cfg, keys, aliases); err != nil {
		panic(err) // the keys above are constants of this file
	}
	fs.IntVar(&f.maxUnacked, "max-unacked", 0, "acked mode: hand over no more records while `N` wait for an ack (0: no bound but the spill directory's)")
}

// ackedSendSummary is the JSON line `send --mode acked` prints, on success and on timeout.
type ackedSendSummary struct {
	Mode     string `json:"mode"`
	Source   string `json:"source"`
	SourceID string `json:"source_id,omitempty"` // the spill directory's; none for a RAM log
	Count    int    `json:"count"`
	// ResumedAt is the seq tag of the first record this run generated: the spill directory
	// already held (or had delivered) records 0..ResumedAt-1 from earlier runs.
	ResumedAt uint64 `json:"resumed_at"`
	// Stored is how many records this run handed to the connection manager, which stored them
	// in its log (sending them is the manager's business).
	Stored int `json:"stored"`
	// Acknowledged is how many of the records 0..count-1 the Brain has acknowledged, whichever
	// run sent them; AcknowledgedThisRun how many acknowledgements arrived during this run
	// (records of earlier runs included).
	Acknowledged        uint64 `json:"acknowledged"`
	AcknowledgedThisRun uint64 `json:"acknowledged_this_run"`
	// Pending is how many records, of this run or earlier ones on the spill directory, are
	// not yet acknowledged.
	Pending       int     `json:"pending"`
	Dropped       uint64  `json:"dropped"`
	Reconnects    uint64  `json:"reconnects"`
	Complete      bool    `json:"complete"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	// DeliverSeconds is the time from the first record handed over to the agent until every
	// record was acknowledged (the Brain processed it): Seconds without starting the node and
	// closing it. 0 unless Complete.
	DeliverSeconds float64 `json:"deliver_seconds,omitempty"`
	// DeliverCPUSeconds is the CPU time this process used during DeliverSeconds.
	DeliverCPUSeconds float64 `json:"deliver_cpu_seconds,omitempty"`
}

// errAckedIncomplete: --timeout passed before every record was acknowledged.
var errAckedIncomplete = errors.New("not every record was acknowledged")

// runSendAcked is `send --mode acked`: the records go through the agent, as in the daemon
// (pharos_batch messages, a window in flight, cumulative acks, reconnects with backoff, the ack
// timeout), and the command exits 0 once every record is acknowledged. --timeout bounds the
// whole run: when it passes first, the summary is printed with the pending count and the exit
// code is 1.
//
// Resuming. With --spill-dir the records wait there until acknowledged, and the directory's
// numbering is dense from 0 (spill.Log): the k-th record it ever stored has sequence number
// k, and this command gives record k the tag seq = k. A run started on a directory that earlier
// runs used (a kill -9 among them) therefore generates only the records from
// agent.AckedNextSeq on, the first the directory does not hold; records an earlier run had
// handed over but that never reached the directory (still in the manager's inbox, or in the
// log's write buffer when the process died) were never sent, so they are generated again under
// the same tags and numbers. Records still on disk are delivered first. Run it with the same
// --count and --source each time. Without --spill-dir the log is in RAM: a restart starts a new
// SourceId from seq 0.
func runSendAcked(ctx context.Context, d *distFlags, f *ackedSendFlags, count int, m *etf.Metric, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "pharos-node send: %v\n", err)
		return exitCode(err)
	}
	dc := d.cfg.Delivery
	syncPolicy, err := spill.ParseSyncPolicy(d.cfg.Spill.Sync)
	if err != nil {
		return fail(fmt.Errorf("%w: --spill.sync: %v", errUsage, err))
	}
	cfg := fsm.DefaultConfig()
	cfg.BaseBackoff, cfg.MaxBackoff = dc.BaseBackoff.D(), dc.MaxBackoff.D()
	cfg.ConnectTimeout = min(cfg.ConnectTimeout, d.timeout)
	cfg.Acked = fsm.AckedConfig{BatchSize: dc.BatchSize, BatchDelay: dc.BatchDelay.D(), Window: dc.Window, AckTimeout: dc.AckTimeout.D()}
	cfg.Delivery = fsm.DeliveryAcked
	if err := cfg.Validate(); err != nil {
		return fail(fmt.Errorf("%w: %w", errUsage, err))
	}
	name, nopts, err := d.nodeConfig(stderr)
	if err != nil {
		return fail(err)
	}
	level := zerolog.WarnLevel
	if d.verbose {
		level = zerolog.InfoLevel
	}
	logger := zerolog.New(stderr).Level(level).With().Timestamp().Logger()

	deadline, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	cpu0, t0 := cpuSeconds(), time.Now()
	sigs := make(chan os.Signal, 2)
	nopts.Signals = sigs // Ergo never sees SIGTERM and SIGINT: Close runs
	a, err := agent.Start(deadline, agent.Options{
		NodeName:     string(name),
		NodeOptions:  nopts,
		Brain:        agent.Target{Node: d.cfg.Brain.Node, Name: d.cfg.Brain.Name},
		Mode:         agent.ModeAcked,
		Delivery:     cfg,
		SpillDir:     d.cfg.Spill.Dir,
		SpillOptions: []spill.Option{spill.WithSync(syncPolicy)},
		RingRecords:  max(count, 1), // the RAM log's capacity without --spill-dir
		Logger:       logger,
	})
	if err != nil {
		signal.Stop(sigs)
		return fail(err)
	}
	deadline, _, release := watchSignals(deadline, sigs)
	defer release()

	next, _ := a.AckedNextSeq()
	sum := ackedSendSummary{Mode: "acked", Source: m.Source, SourceID: a.SourceID(), Count: count, ResumedAt: next}
	target := max(uint64(count), next)
	acked0 := a.Stats().Acked
	handover, handoverCPU := time.Now(), cpuSeconds()
	runErr := sendAckedRecords(deadline, a, m, next, uint64(count), f.maxUnacked, &sum.Stored)
	if runErr == nil {
		runErr = waitAcked(deadline, a, target)
	}
	deliverSeconds, deliverCPU := time.Since(handover).Seconds(), cpuSeconds()-handoverCPU
	st := a.Stats()
	stored, _ := a.AckedNextSeq()
	inInbox := max(int64(sum.Stored)-int64(stored-next), 0)
	held := a.Unacknowledged()
	// The log numbers densely from 0: every record it ever stored and no longer holds was
	// acknowledged.
	sum.Acknowledged = stored - uint64(held)
	sum.AcknowledgedThisRun = st.Acked - acked0
	sum.Pending = held + int(inInbox)
	sum.Dropped, sum.Reconnects = st.Dropped, st.Reconnects
	sum.Complete = runErr == nil && sum.Pending == 0 && st.Dropped == 0
	if sum.Complete {
		sum.DeliverSeconds, sum.DeliverCPUSeconds = deliverSeconds, deliverCPU
	}
	// Everything is acknowledged (or the deadline passed): Close stops at once, leaving what is
	// pending on disk for the next run.
	closeCtx, closeCancel := context.WithTimeout(context.Background(), time.Second)
	if err := a.Close(closeCtx); err != nil && runErr == nil {
		runErr = err
	}
	closeCancel()
	sum.Seconds = time.Since(t0).Seconds()
	sum.RecordsPerSec = float64(sum.Stored) / sum.Seconds
	sum.CPUSeconds = cpuSeconds() - cpu0
	line, _ := json.Marshal(sum)
	fmt.Fprintln(stdout, string(line))
	switch {
	case runErr != nil:
		return fail(runErr)
	case st.Dropped > 0:
		return fail(fmt.Errorf("%d records dropped (spill directory full or refusing)", st.Dropped))
	case !sum.Complete:
		return fail(errAckedIncomplete)
	}
	return 0
}

// sendAckedBatch is how many records sendAckedRecords hands over per DeliverMetrics call.
const sendAckedBatch = 256

// sendAckedRecords hands records from..to-1 to the agent, in order, sendAckedBatch at a time,
// waiting while its mailbox is full, and, with maxUnacked > 0, while that many records wait for
// an ack (checked before each batch). sent counts the records accepted.
func sendAckedRecords(ctx context.Context, a *agent.Agent, m *etf.Metric, from, to uint64, maxUnacked int, sent *int) error {
	batch := make([]etf.Metric, sendAckedBatch)
	for k := range batch {
		batch[k] = *m
		batch[k].Tags = slices.Clone(m.Tags) // each its own seq tag
	}
	wait := func() error {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d records handed over: %w", errAckedIncomplete, *sent, ctx.Err())
		case <-time.After(time.Millisecond):
			return nil
		}
	}
	// The batch's seq tags are cut from one string: one allocation per batch, not per record.
	digits := make([]byte, 0, sendAckedBatch*20)
	ends := make([]int, sendAckedBatch)
	ts := m.TimestampMs
	for i := from; i < to; {
		for maxUnacked > 0 {
			stored, _ := a.AckedNextSeq()
			if a.Unacknowledged()+*sent-int(stored-from) < maxUnacked {
				break
			}
			if err := wait(); err != nil {
				return err
			}
		}
		n := int(min(uint64(sendAckedBatch), to-i))
		digits = digits[:0]
		for k := range n {
			digits = strconv.AppendUint(digits, i+uint64(k), 10)
			ends[k] = len(digits)
		}
		seqs, start := string(digits), 0
		for k := range n {
			seq := i + uint64(k)
			batch[k].Tags[1].Value, start = seqs[start:ends[k]], ends[k]
			batch[k].Value = float64(seq)
			if (seq-from)%clockEvery == 0 {
				ts = time.Now().UnixMilli()
			}
			batch[k].TimestampMs = ts
		}
		for pending := batch[:n]; len(pending) > 0; {
			k, err := a.DeliverMetrics(pending)
			*sent += k
			i += uint64(k)
			pending = pending[k:]
			if err == nil {
				break
			}
			if !errors.Is(err, agent.ErrBusy) {
				return fmt.Errorf("record %d: %w", i, err)
			}
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitAcked polls until the log has stored target records and holds none unacknowledged, or ctx
// is done.
func waitAcked(ctx context.Context, a *agent.Agent, target uint64) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if stored, _ := a.AckedNextSeq(); stored >= target && a.Unacknowledged() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", errAckedIncomplete, ctx.Err())
		case <-tick.C:
		}
	}
}
