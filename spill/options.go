package spill

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// SyncPolicy says when appended records reach stable storage.
type SyncPolicy int

const (
	// SyncInterval (the default): a background group commit writes and fsyncs everything
	// appended every interval (100 ms unless WithSyncInterval says otherwise). Append returns
	// at once. Loss window: a process crash loses the records still in the Log's write buffer
	// (at most one interval's worth, and at most the flush size); an OS crash or power loss
	// loses at most the records appended in the last interval plus the time one fsync takes.
	SyncInterval SyncPolicy = iota
	// SyncAlways: Append returns only once its record is written and fsynced. Concurrent
	// Appends share one fsync (group commit).
	SyncAlways
	// SyncNever: records are written to the OS in batches and never fsynced by the log; an OS
	// crash or power loss may lose anything the OS had not written back.
	SyncNever
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// ParseSyncPolicy parses "always", "interval" or "never".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch strings.ToLower(s) {
	case "always":
		return SyncAlways, nil
	case "interval", "":
		return SyncInterval, nil
	case "never":
		return SyncNever, nil
	}
	return 0, fmt.Errorf("%w: sync policy %q (want always, interval or never)", ErrBadOption, s)
}

// OverflowPolicy says what Append does when the size cap is reached.
type OverflowPolicy int

const (
	// DropOldest (the default): whole segments are deleted, oldest first, until the record
	// fits; the untrimmed records they held are counted in Stats.Dropped and DroppedBytes.
	DropOldest OverflowPolicy = iota
	// Refuse: Append fails with ErrFull and stores nothing; the caller keeps the record in
	// RAM and backs off until Trim frees space.
	Refuse
)

func (p OverflowPolicy) String() string {
	switch p {
	case DropOldest:
		return "drop-oldest"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("OverflowPolicy(%d)", int(p))
}

// ParseOverflowPolicy parses "drop-oldest" or "refuse".
func ParseOverflowPolicy(s string) (OverflowPolicy, error) {
	switch strings.ToLower(s) {
	case "drop-oldest", "drop_oldest", "dropoldest", "":
		return DropOldest, nil
	case "refuse":
		return Refuse, nil
	}
	return 0, fmt.Errorf("%w: overflow policy %q (want drop-oldest or refuse)", ErrBadOption, s)
}

// Clock is the time source of the group commit.
type Clock interface {
	Now() time.Time
	// Tick returns a channel that receives every d, and a function that stops it.
	Tick(d time.Duration) (c <-chan time.Time, stop func())
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Tick(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Defaults.
const (
	DefaultSegmentSize   = 64 << 20
	DefaultMaxBytes      = 1 << 30
	DefaultMaxRecordSize = 1 << 20
	DefaultSyncInterval  = 100 * time.Millisecond
	DefaultFlushBytes    = 256 << 10
	DefaultMaxSpans      = 1024
	DefaultTailBytes     = 4 << 20

	minSegmentSize = 4 << 10
)

// Option configures Open, Inspect and Repair.
type Option func(*options)

type options struct {
	logger        zerolog.Logger
	clock         Clock
	reg           prometheus.Registerer
	fs            FS
	rand          io.Reader
	sync          SyncPolicy
	interval      time.Duration
	overflow      OverflowPolicy
	segmentSize   int64
	maxBytes      int64
	maxRecordSize int
	flushBytes    int
	maxSpans      int
	sourceID      string
	tailBytes     int64
	releaseReads  bool
}

func buildOptions(opts []Option) (options, error) {
	o := options{
		logger:      zerolog.Nop(),
		clock:       systemClock{},
		fs:          OSFS{},
		rand:        rand.Reader,
		sync:        SyncInterval,
		interval:    DefaultSyncInterval,
		overflow:    DropOldest,
		segmentSize: DefaultSegmentSize,
		maxBytes:    DefaultMaxBytes,
		flushBytes:  DefaultFlushBytes,
		maxSpans:    DefaultMaxSpans,
		tailBytes:   DefaultTailBytes,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxRecordSize == 0 {
		// The default, or as much as a segment holds if that is less.
		o.maxRecordSize = int(min(DefaultMaxRecordSize, (o.segmentSize&^7)-segmentHeaderSize-frameHeaderSize))
	}
	bad := func(format string, a ...any) (options, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{ErrBadOption}, a...)...)
	}
	switch {
	case o.sync < SyncInterval || o.sync > SyncNever:
		return bad("sync policy %d", o.sync)
	case o.overflow < DropOldest || o.overflow > Refuse:
		return bad("overflow policy %d", o.overflow)
	case o.interval <= 0:
		return bad("sync interval %v", o.interval)
	case o.segmentSize < minSegmentSize:
		return bad("segment size %d < %d", o.segmentSize, minSegmentSize)
	case o.maxBytes < 2*o.segmentSize:
		return bad("size cap %d < 2 segments of %d", o.maxBytes, o.segmentSize)
	case o.maxRecordSize <= 0 || o.maxRecordSize > maxFrameLen ||
		frameSize(o.maxRecordSize) > o.segmentSize-segmentHeaderSize:
		return bad("max record size %d (at most %d, and a frame must fit a segment)", o.maxRecordSize, maxFrameLen)
	case o.flushBytes <= 0:
		return bad("flush size %d", o.flushBytes)
	case o.maxSpans < 1 || o.maxSpans > maxMetaSpans:
		return bad("max spans %d (1 to %d)", o.maxSpans, maxMetaSpans)
	case o.tailBytes < 0:
		return bad("tail size %d", o.tailBytes)
	case len(o.sourceID) > MaxSourceIDLen:
		return bad("source id of %d bytes (at most %d)", len(o.sourceID), MaxSourceIDLen)
	}
	o.segmentSize &^= 7
	return o, nil
}

// WithLogger sets the logger; nil (the default) logs nothing.
func WithLogger(l *zerolog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.logger = zerolog.Nop()
		} else {
			o.logger = *l
		}
	}
}

// WithClock sets the clock that drives the group commit (default: the system clock).
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithRegisterer registers the log's metrics (pharos_spill_*) with reg; Close unregisters them.
// Nil (the default) registers nothing.
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithFS sets the filesystem (default OSFS).
func WithFS(fsys FS) Option { return func(o *options) { o.fs = fsys } }

// WithRand sets the random source used to generate a new directory's source id (default
// crypto/rand).
func WithRand(r io.Reader) Option { return func(o *options) { o.rand = r } }

// WithSync sets the sync policy (default SyncInterval).
func WithSync(p SyncPolicy) Option { return func(o *options) { o.sync = p } }

// WithSyncInterval sets the group commit interval of SyncInterval (default 100 ms).
func WithSyncInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithOverflow sets the overflow policy (default DropOldest).
func WithOverflow(p OverflowPolicy) Option { return func(o *options) { o.overflow = p } }

// WithSegmentSize sets the size at which a segment is closed and the next one started (default
// 64 MiB, at least 4 KiB). Records never span segments.
func WithSegmentSize(n int64) Option { return func(o *options) { o.segmentSize = n } }

// WithMaxBytes sets the size cap: the total size of the segment files (default 1 GiB, at least
// two segments).
func WithMaxBytes(n int64) Option { return func(o *options) { o.maxBytes = n } }

// WithMaxRecordSize sets the longest record Append accepts (default 1 MiB, or what one segment
// holds if that is less).
func WithMaxRecordSize(n int) Option { return func(o *options) { o.maxRecordSize = n } }

// WithFlushBytes sets how many bytes Append buffers before writing them to the OS, under
// SyncInterval and SyncNever (default 256 KiB). A failed write keeps them buffered, up to 16
// times this, and retries.
func WithFlushBytes(n int) Option { return func(o *options) { o.flushBytes = n } }

// WithMaxSpans sets how many renumberings (see Log.Renumber) a directory keeps at a time
// (default 1024, at most 65536). Each one costs 16 bytes of the meta file, which is rewritten
// with every trim point persisted; one whose records are all trimmed is forgotten.
func WithMaxSpans(n int) Option { return func(o *options) { o.maxSpans = n } }

// WithSourceID sets the sender identity written into a new directory (at most 64 bytes). An
// existing directory keeps its own; by default a new one gets 16 random bytes in hex.
func WithSourceID(id string) Option { return func(o *options) { o.sourceID = id } }

// WithTailBytes sets how many of the bytes written last the log keeps in memory (default 4 MiB;
// 0 keeps none). Read and Trim find records written moments ago there instead of reading them
// back from the segment file, which makes the append, read, trim stream of acknowledged delivery
// cheap. Records read from there share the write buffer's arrays (1 MiB each), as records read
// from the file share a read buffer.
func WithTailBytes(n int64) Option { return func(o *options) { o.tailBytes = n } }

// WithReadsReleasedByTrim is the caller's promise that it no longer uses a record's Data once a
// Trim has covered the record's sequence number. The log may then write new records into the
// memory of records it read from the tail and that are trimmed, instead of taking fresh memory
// for each megabyte appended (which costs page faults and collections at hundreds of thousands
// of records a second). Without it (the default), Data stays valid for as long as the caller
// keeps it.
func WithReadsReleasedByTrim() Option { return func(o *options) { o.releaseReads = true } }
