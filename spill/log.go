package spill

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/rs/zerolog"
)

// Log is a spill directory opened for appending and replay. Its methods are safe for concurrent
// use: any number of goroutines may Append while one consumer reads, trims and drains.
//
// Its state is in parts, each with its own file: the writer (writer.go: the active segment,
// the write buffer, rotation, the group commit), the reader (reader.go: the read cursor, the
// read marks, the trim point), the numbering (numbering.go) and what the meta file holds
// (meta.go). The segments, the in-memory tail, the disk usage and the counters are shared. One
// mutex guards all of it; syncSem serializes the group commits.
type Log struct {
	// Set at Open, read-only after.
	dir      string
	o        options
	fs       FS
	log      zerolog.Logger
	lock     io.Closer
	reg      *collector
	sourceID string
	recovery Recovery

	// syncSem serializes syncs (the group commit): a send takes it, a receive releases it. It
	// is taken before mu, never after. A channel rather than a mutex so that an Append can wait
	// for its batch to be committed or for its turn to commit, whichever comes first.
	syncSem chan struct{}
	stop    chan struct{} // SyncInterval: ends syncLoop
	done    chan struct{} // closed when syncLoop has ended

	mu     sync.Mutex
	closed bool
	wr     writer
	rd     reader
	num    numbering
	meta   metaState

	segs      []*segment // oldest first; the active one, if any, is last
	diskBytes int64      // bytes in the segment files (buffered bytes not included)
	// tail keeps what was written last (the write buffer, once written, goes there and the
	// buffer goes on in the rest of its array), for Read and Trim. See tail.go.
	tail  tail
	stats Stats
}

// Record is a record read back from the log.
type Record struct {
	Seq  uint64 // its number
	Data []byte
}

// Stats are a Log's counters since Open (Records, Bytes, Segments, DiskBytes and the numbers
// are current values).
type Stats struct {
	Records   int    // untrimmed records, buffered ones included
	Bytes     int64  // their payload bytes
	Segments  int    // segment files
	DiskBytes int64  // bytes in the segment files and the write buffer
	NextSeq   uint64 // the number the next Append gives
	// UntrimmedFrom is the number of the oldest untrimmed record, NextSeq if every record is
	// trimmed: every record numbered below it is trimmed.
	UntrimmedFrom uint64

	Appended      uint64 // records stored by Append
	AppendedBytes uint64
	Trimmed       uint64 // records trimmed
	TrimmedBytes  uint64
	Dropped       uint64 // untrimmed records deleted by the DropOldest overflow policy
	DroppedBytes  uint64
	Refused       uint64 // Appends refused with ErrFull (the Refuse policy)
	WriteErrors   uint64 // failed writes (ENOSPC among them)
	SyncErrors    uint64 // failed fsyncs
	Syncs         uint64 // fsyncs of the active segment
	LostRecords   uint64 // found lost by the recovery at Open, or by a read since
	LostBytes     uint64
}

// Open opens (creating if needed) the spill directory dir. It recovers whatever a crash or
// damage left: it validates every record, cuts a torn tail, skips damaged regions and counts
// what they cost (see Recovery); it fails only when the directory cannot be used at all (it
// cannot be created, listed or locked; a new one cannot be written).
func Open(dir string, opts ...Option) (*Log, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	if err := mkdirDurable(o.fs, dir); err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	lock, err := o.fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("spill: lock %s: %w", dir, err)
	}
	l := &Log{dir: dir, o: o, fs: o.fs, log: o.logger.With().Str("spill", dir).Logger(), lock: lock, syncSem: make(chan struct{}, 1),
		tail: tail{limit: o.tailBytes, releaseOnTrim: o.releaseReads}, rd: reader{marks: readMarks{limit: maxReadMarks}}}
	if err := l.recover(); err != nil {
		l.closeFiles()
		lock.Close()
		return nil, err
	}
	if o.reg != nil {
		l.reg = newCollector(l)
		if err := o.reg.Register(l.reg); err != nil {
			l.log.Warn().Err(err).Msg("spill metrics not registered")
			l.reg = nil
		}
	}
	if o.sync == SyncAlways {
		l.wr.batch = newBatch()
	}
	if o.sync == SyncInterval {
		l.stop, l.done = make(chan struct{}), make(chan struct{})
		go l.syncLoop()
	}
	return l, nil
}

// mkdirDurable creates dir and its missing parents, and fsyncs the parent of each directory it
// created: a spill directory created just before a crash of the machine could otherwise vanish
// with the records fsynced into it.
func mkdirDurable(fsys FS, dir string) error {
	var created []string // deepest first
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		f, err := fsys.OpenFile(d, os.O_RDONLY, 0) // not ReadDir: a parent may hold many entries
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break // there (or MkdirAll says what is wrong)
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range created {
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return fmt.Errorf("sync %s: %w", filepath.Dir(d), err)
		}
	}
	return nil
}

// newSourceID returns 16 random bytes in hex.
func newSourceID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("spill: source id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Dir returns the directory.
func (l *Log) Dir() string { return l.dir }

// SourceID returns the sender identity kept in the directory (docs/wire.md's SourceId). It is the
// same across restarts.
func (l *Log) SourceID() string { return l.sourceID }

// Recovery returns what Open found.
func (l *Log) Recovery() Recovery { return l.recovery }

// deleteTrimmedLocked deletes the sealed segments at the front whose records are all trimmed.
// The trim point passes valid frames only, so it is compared with the end of the last one, not
// with the file's size: a sealed segment may end in bytes no frame can be read from (a torn
// tail Open did not cut because a segment came after it, or anything after a header so damaged
// that Open started a new segment rather than append to it).
func (l *Log) deleteTrimmedLocked() int {
	n := 0
	for n < len(l.segs) && l.segs[n] != l.wr.active && l.segs[n].trimRecs == l.segs[n].records && l.segs[n].trim.off >= l.segs[n].validEnd {
		n++
	}
	if n == 0 {
		return 0
	}
	if err := l.removeFrontLocked(n); err != nil {
		l.log.Warn().Err(err).Msg("cannot delete trimmed segments")
		return 0
	}
	return n
}

// dropOldestLocked deletes the oldest sealed segment to stay under the size cap, counting the
// untrimmed records it held as dropped.
func (l *Log) dropOldestLocked() error {
	seg := l.segs[0]
	recs, bytes := seg.pending()
	if err := l.removeFrontLocked(1); err != nil {
		return err
	}
	l.stats.Dropped += uint64(recs)
	l.stats.DroppedBytes += uint64(bytes)
	l.log.Warn().Str("segment", seg.name).Int("records", recs).Int64("bytes", bytes).Msg("size cap reached: oldest segment dropped")
	return nil
}

// removeFrontLocked deletes the n oldest segments: the meta file first learns the new head, so
// that a crash in between leaves stale segments (removed at the next Open), never a loss.
func (l *Log) removeFrontLocked(n int) error {
	last := l.segs[n-1]
	l.meta.headOrd, l.meta.headPos = last.endOrd, last.endPos
	if err := l.writeMetaLocked(l.metaLocked(false)); err != nil {
		return err
	}
	l.tail.release(last, last.size)
	for _, seg := range l.segs[:n] {
		if seg.rf != nil {
			seg.rf.Close()
			seg.rf = nil
		}
		if err := l.fs.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.log.Warn().Err(err).Str("segment", seg.name).Msg("cannot remove segment")
		}
		l.diskBytes -= seg.size
		if l.rd.cur.seg == seg {
			l.rd.cur = cursor{}
		}
	}
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.fixCursorLocked()
	return nil
}

// Close writes and (unless SyncNever) fsyncs what is buffered, records the trim point and, if
// all of that succeeded under SyncAlways or SyncInterval, that the directory was closed cleanly
// (see UnsentFrom), and releases the directory. If buffered records cannot be written (a full
// disk) they are lost, and Close says so in its error. Close is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	l.syncSem <- struct{}{}
	defer func() { <-l.syncSem }()
	var err error
	if l.o.sync == SyncNever {
		l.mu.Lock()
		err = l.flushLocked()
		l.mu.Unlock()
	} else {
		err = l.syncLocked()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &l.wr
	if n := w.bufd.records; n > 0 {
		l.log.Error().Err(err).Int("records", n).Msg("closing with records that could not be written: they are lost")
	}
	// Past w.written lies what a failed write left. Under SyncAlways it is never a record an
	// Append was told is stored (their failed writes were rolled back), and is cut (here if the
	// cut after the rollback failed), durably; otherwise it may be, while the last write
	// failed, and whole frames of it are then kept for the next Open.
	if w.badTail && w.f != nil && (w.flushErr == nil || l.o.sync == SyncAlways) {
		if e := w.f.Truncate(w.written); e == nil && l.o.sync != SyncNever {
			w.f.Sync()
		}
	}
	// Clean: every record stored is durable, so a crash of the machine cannot cut the
	// directory short of what a consumer delivered. Under SyncNever nothing is fsynced.
	clean := err == nil && l.o.sync != SyncNever
	if e := l.writeMetaLocked(l.metaLocked(clean)); e != nil && err == nil {
		err = e
	}
	l.closeFiles()
	if l.reg != nil {
		l.o.reg.Unregister(l.reg)
	}
	if e := l.lock.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

func (l *Log) closeFiles() {
	if l.wr.f != nil {
		l.wr.f.Close()
		l.wr.f = nil
	}
	for _, f := range l.wr.unsynced {
		f.Close()
	}
	l.wr.unsynced = nil
	for _, seg := range l.segs {
		if seg.rf != nil {
			seg.rf.Close()
			seg.rf = nil
		}
	}
}

// Stats returns the Log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Records, s.Bytes = l.pendingLocked()
	s.Segments = len(l.segs)
	s.DiskBytes = l.diskBytes + int64(len(l.wr.buf))
	s.NextSeq = l.num.number(l.wr.lastSeq + 1)
	s.UntrimmedFrom = l.num.number(l.rd.trimmedSeq + 1)
	return s
}

// Len returns the number of untrimmed records.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, _ := l.pendingLocked()
	return n
}

// Bytes returns the payload bytes of the untrimmed records.
func (l *Log) Bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, b := l.pendingLocked()
	return b
}

func (l *Log) pendingLocked() (int, int64) {
	n, b := l.wr.bufd.records, l.wr.bufd.bytes
	for _, seg := range l.segs {
		r, rb := seg.pending()
		n += r
		b += rb
	}
	return n, b
}
