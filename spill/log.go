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
	"time"

	"github.com/rs/zerolog"
)

// Log is a spill directory opened for appending and replay. Its methods are safe for concurrent
// use: any number of goroutines may Append while one consumer reads, trims and drains.
type Log struct {
	dir  string
	o    options
	fs   FS
	log  zerolog.Logger
	lock io.Closer
	reg  *collector

	// syncSem serializes syncs (the group commit): a send takes it, a receive releases it. It
	// is taken before mu, never after. A channel rather than a mutex so that an Append can wait
	// for its batch to be committed or for its turn to commit, whichever comes first.
	syncSem chan struct{}

	mu     sync.Mutex
	closed bool

	sourceID      string
	nextSeq       uint64 // next sequence number to issue
	seqLimit      uint64 // the meta file says no sequence number >= seqLimit was issued
	lastSeq       uint64 // highest sequence number stored (written or buffered)
	trimmedSeq    uint64
	persistedTrim uint64    // trimmedSeq as the meta file has it
	metaWritten   time.Time // when the meta file was last written
	headOrd       uint64    // as the meta file has them
	headPos       uint64
	nextOrd       uint64 // of the next frame appended
	nextPos       uint64

	segs      []*segment // oldest first; the active one, if any, is last
	lastIndex uint64     // the highest segment index created, or seen in the directory at Open
	active    *segment   // nil: the next Append starts a segment
	w         File       // the active segment, open for writing
	written   int64      // bytes of the active segment in its file
	wDirty    bool       // bytes written since the last fsync
	wTail     bool       // a failed write may have left garbage past written
	buf       []byte     // frames appended but not yet written, going at offset written
	bufd      bufInfo
	unsynced  []File // sealed segments still to fsync and close
	dirDirty  bool   // a segment was created since the last directory fsync
	diskBytes int64  // bytes in the segment files (buffered bytes not included)
	flushErr  error  // the last write failed; cleared by a successful one
	syncErr   error  // the last sync failed
	batch     *batch // SyncAlways: the group commit the next Append joins
	scratch   []byte // scan window for trimming

	// tail keeps what was written last (buf, once written, goes there and buf goes on in the
	// rest of its array); marks remember where the records Read handed out end, for Trim.
	// See tail.go.
	tail  tail
	marks readMarks

	cur cursor

	stats    Stats
	recovery Recovery
	lastSync time.Time

	stop chan struct{}
	done chan struct{}
}

// bufInfo describes the records in Log.buf.
type bufInfo struct {
	records  int
	bytes    int64
	firstSeq uint64
	lastSeq  uint64
	startOrd uint64 // ord and pos of the first buffered frame, to roll back to
	startPos uint64
	prevSeq  uint64 // lastSeq before the first buffered record
}

// batch is one group commit under SyncAlways: the Appends whose records it writes wait on done.
// Part of a batch may have been written before its commit, by a Read or a Trim that needed the
// buffered records: if the commit's own write then fails, only the records from failedFrom on
// are rolled back, and the Appends of the ones written before get the fsync's result alone.
type batch struct {
	done       chan struct{}
	err        error  // the fsync's (and the trim point's) error
	writeErr   error  // the failed write's
	failedFrom uint64 // seq of the first record rolled back, 0 if none
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// result is what the Append of record seq returns once b is committed.
func (b *batch) result(seq uint64) error {
	if b.writeErr != nil && seq >= b.failedFrom {
		return b.writeErr
	}
	return b.err
}

// Record is a record read back from the log.
type Record struct {
	Seq  uint64
	Data []byte
}

// Stats are a Log's counters since Open (Records, Bytes, Segments, DiskBytes and the sequence
// numbers are current values).
type Stats struct {
	Records    int    // untrimmed records, buffered ones included
	Bytes      int64  // their payload bytes
	Segments   int    // segment files
	DiskBytes  int64  // bytes in the segment files and the write buffer
	NextSeq    uint64 // the next sequence number Append gives
	LastSeq    uint64 // the highest sequence number stored or trimmed, 0 if none
	TrimmedSeq uint64 // every record with seq <= TrimmedSeq is trimmed

	Appended      uint64 // records stored by Append and AppendSeq
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
		tail: tail{limit: o.tailBytes, releaseOnTrim: o.releaseReads}, marks: readMarks{limit: maxReadMarks}}
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
		l.batch = newBatch()
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

// recover scans the directory and sets the Log up from what it found.
func (l *Log) recover() error {
	ds, err := scanDir(l.fs, l.dir)
	if err != nil {
		return fmt.Errorf("spill: scan %s: %w", l.dir, err)
	}
	for _, name := range ds.stray {
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
			l.log.Warn().Err(err).Str("file", name).Msg("cannot remove leftover temporary file")
		}
	}
	rec := Recovery{
		LostRecords: ds.lostRecords, LostBytes: ds.lostBytes, TornBytes: ds.tornBytes,
		Damage: ds.damage(), StaleSegments: len(ds.stale),
	}
	for _, seg := range ds.foreign {
		rec.Foreign = append(rec.Foreign, seg.name)
	}
	m := ds.meta
	switch {
	case ds.metaErr == nil:
	case errors.Is(ds.metaErr, fs.ErrNotExist) && len(ds.segs) == 0 && len(ds.foreign) == 0:
		id := l.o.sourceID
		if id == "" {
			if id, err = newSourceID(l.o.rand); err != nil {
				return err
			}
		}
		m = meta{sourceID: id, nextSeq: 1}
		if err := writeAtomic(l.fs, l.dir, filepath.Join(l.dir, metaName), encodeMeta(m)); err != nil {
			return err
		}
	default:
		rec.MetaRebuilt, rec.MetaErr = true, ds.metaErr
		m = meta{sourceID: ds.sourceID(), nextSeq: ds.maxSeq() + 1 + l.o.seqLease}
		if m.sourceID == "" {
			m.sourceID = l.o.sourceID
		}
		if m.sourceID == "" {
			if m.sourceID, err = newSourceID(l.o.rand); err != nil {
				return err
			}
		}
		if len(ds.segs) > 0 {
			m.headOrd, m.headPos = ds.segs[0].firstOrd, ds.segs[0].firstPos
		}
		metaPath := filepath.Join(l.dir, metaName)
		if !errors.Is(ds.metaErr, fs.ErrNotExist) {
			if err := l.fs.Rename(metaPath, metaPath+brokenExt); err != nil {
				l.log.Warn().Err(err).Msg("cannot keep the invalid meta file")
			}
		}
		if err := writeAtomic(l.fs, l.dir, metaPath, encodeMeta(m)); err != nil {
			l.log.Error().Err(err).Msg("cannot rewrite the meta file; appends wait for it")
			m.nextSeq = 0 // no sequence number may be issued before the meta file is written
		}
		l.log.Warn().Err(ds.metaErr).Str("source_id", m.sourceID).Msg("meta file rebuilt from the segments")
	}
	for _, seg := range ds.stale {
		if err := l.fs.Remove(seg.path); err != nil {
			l.log.Warn().Err(err).Str("segment", seg.name).Msg("cannot remove stale segment")
		}
	}
	l.sourceID = m.sourceID
	l.trimmedSeq, l.persistedTrim = m.trimmedSeq, m.trimmedSeq
	l.headOrd, l.headPos = m.headOrd, m.headPos
	l.nextOrd, l.nextPos = ds.endOrd, ds.endPos
	l.lastSeq = max(ds.maxSeq(), m.trimmedSeq) // trimmed numbers are taken too, even once deleted
	l.seqLimit = m.nextSeq
	l.nextSeq = max(m.nextSeq, l.lastSeq+1, 1)
	if rec.MetaRebuilt && m.nextSeq == 0 {
		l.nextSeq = ds.maxSeq() + 1 + l.o.seqLease
	}
	l.segs = ds.segs
	l.lastIndex = ds.maxIndex()
	for _, seg := range l.segs {
		l.diskBytes += seg.size
	}
	if n := len(l.segs); n > 0 && l.segs[n-1].hdrErr == nil {
		seg := l.segs[n-1]
		if err := l.reopenActive(seg); err != nil {
			l.log.Warn().Err(err).Str("segment", seg.name).Msg("cannot append to the last segment; the next append starts a new one")
		}
	}
	for _, seg := range l.segs {
		r, b := seg.pending()
		rec.Records += r
		rec.Bytes += b
	}
	rec.Segments = len(l.segs)
	l.stats.LostRecords, l.stats.LostBytes = rec.LostRecords, rec.LostBytes
	l.recovery = rec
	l.cur = cursor{}
	l.fixCursorLocked()
	ev := l.log.Info()
	if rec.LostRecords > 0 || rec.TornBytes > 0 || len(rec.Damage) > 0 {
		ev = l.log.Warn()
	}
	ev.Int("segments", rec.Segments).Int("records", rec.Records).Uint64("lost_records", rec.LostRecords).
		Uint64("lost_bytes", rec.LostBytes).Int64("torn_bytes", rec.TornBytes).Int("damaged_regions", len(rec.Damage)).
		Str("source_id", l.sourceID).Uint64("next_seq", l.nextSeq).Msg("spill opened")
	return nil
}

// reopenActive opens the last segment for appending, cutting a damaged tail.
func (l *Log) reopenActive(seg *segment) error {
	f, err := l.fs.OpenFile(seg.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if seg.size > seg.validEnd {
		if err := f.Truncate(seg.validEnd); err != nil {
			f.Close()
			return writeErr("truncate", seg.path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return writeErr("sync", seg.path, err)
		}
		l.diskBytes -= seg.size - seg.validEnd
		seg.size = seg.validEnd
	}
	l.active, l.w, l.written = seg, f, seg.size
	l.bufd = bufInfo{startOrd: l.nextOrd, startPos: l.nextPos, prevSeq: l.lastSeq}
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

// SourceID returns the sender identity kept in the directory (WIRE.md's SourceId). It is the
// same across restarts.
func (l *Log) SourceID() string { return l.sourceID }

// Recovery returns what Open found.
func (l *Log) Recovery() Recovery { return l.recovery }

// NextSeq returns the sequence number the next Append will give.
func (l *Log) NextSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq
}

// Append stores rec after every record already stored and returns its sequence number, which
// is greater than any number the directory ever gave before, across restarts too. Under
// SyncAlways it returns once the record is fsynced; otherwise at once (see SyncPolicy for the
// loss window). On error nothing was stored: ErrFull (Refuse policy), ErrRecordTooLarge,
// ErrClosed, or a *WriteError (errors.Is(err, ErrNoSpace) for a full disk). Under SyncAlways a
// failed fsync is the one exception: the record may or may not survive a crash.
func (l *Log) Append(rec []byte) (uint64, error) {
	return l.append(rec, 0, false)
}

// AppendSeq stores rec under a sequence number obtained from Reserve: for a record that was
// numbered while it was in RAM and is spilled later. seq must be reserved and greater than every
// number stored or trimmed so far, else ErrSeqOrder.
func (l *Log) AppendSeq(seq uint64, rec []byte) error {
	_, err := l.append(rec, seq, true)
	return err
}

// Reserve hands out n consecutive sequence numbers without storing anything, for records that
// are numbered in RAM (acknowledged mode). They are never handed out again, across restarts too.
func (l *Log) Reserve(n int) (first uint64, err error) {
	if n <= 0 {
		return 0, fmt.Errorf("%w: reserve %d", ErrBadOption, n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	return l.issueLocked(uint64(n))
}

func (l *Log) append(rec []byte, seq uint64, haveSeq bool) (uint64, error) {
	if len(rec) > l.o.maxRecordSize {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrRecordTooLarge, len(rec), l.o.maxRecordSize)
	}
	size := frameSize(len(rec))
	l.mu.Lock()
	for {
		if l.closed {
			l.mu.Unlock()
			return 0, ErrClosed
		}
		if haveSeq && (seq <= l.lastSeq || seq >= l.nextSeq) {
			last, next := l.lastSeq, l.nextSeq // read under the lock: appenders change them
			l.mu.Unlock()
			return 0, fmt.Errorf("%w: %d (last stored or trimmed %d, next unreserved %d)", ErrSeqOrder, seq, last, next)
		}
		needSync, err := l.roomLocked(size)
		if err != nil {
			l.mu.Unlock()
			return 0, err
		}
		if !needSync {
			break
		}
		// SyncAlways rotates only with an empty buffer: commit the pending batch first.
		l.mu.Unlock()
		l.syncSem <- struct{}{}
		err = l.syncLocked()
		<-l.syncSem
		if err != nil {
			return 0, err
		}
		l.mu.Lock()
	}
	if !haveSeq {
		var err error
		if seq, err = l.issueLocked(1); err != nil {
			l.mu.Unlock()
			return 0, err
		}
	}
	if len(l.buf) == 0 {
		l.bufd = bufInfo{startOrd: l.nextOrd, startPos: l.nextPos, prevSeq: l.lastSeq, firstSeq: seq}
	}
	if l.tail.limit > 0 && cap(l.buf)-len(l.buf) < int(size) {
		l.growBufLocked(int(size))
	}
	l.buf = appendFrame(l.buf, typeRecord, seq, l.nextOrd, l.nextPos, rec)
	l.bufd.records++
	l.bufd.bytes += int64(len(rec))
	l.bufd.lastSeq = seq
	l.nextOrd++
	l.nextPos += uint64(len(rec))
	l.lastSeq = seq
	l.stats.Appended++
	l.stats.AppendedBytes += uint64(len(rec))
	if l.o.sync == SyncAlways {
		b := l.batch
		l.mu.Unlock()
		return seq, l.commit(b, seq)
	}
	if len(l.buf) >= l.o.flushBytes || seq <= l.trimmedSeq {
		// (A record already trimmed is written at once, to be counted as trimmed.)
		l.flushLocked() // a failure keeps the buffer; it is retried, and reported when it is full
	}
	l.mu.Unlock()
	return seq, nil
}

// growBufLocked moves the write buffer to another arena with room for n more bytes. The old
// one is left to the tail: bytes written from it are not written to again while the tail keeps
// them, nor ever once Read has handed them out. An arena holds at least a flush, and a quarter
// of the tail up to writeBufferSize.
func (l *Log) growBufLocked(n int) {
	l.buf = l.tail.grow(l.buf, n, max(l.o.flushBytes, int(min(writeBufferSize, l.tail.limit/4))))
}

// issueLocked hands out n sequence numbers, first moving the limit in the meta file if needed.
func (l *Log) issueLocked(n uint64) (uint64, error) {
	if l.nextSeq+n > l.seqLimit {
		limit := l.nextSeq + n + l.o.seqLease
		if err := l.writeMetaLocked(limit); err != nil {
			return 0, err
		}
		l.seqLimit = limit
	}
	first := l.nextSeq
	l.nextSeq += n
	return first, nil
}

// roomLocked makes room for a frame of size bytes: it starts a segment if the active one cannot
// take it, and applies the overflow policy if the size cap would be passed. needSync asks the
// caller to commit the pending SyncAlways batch first.
func (l *Log) roomLocked(size int64) (needSync bool, err error) {
	rotate := l.active == nil || l.written+int64(len(l.buf))+size > l.o.segmentSize
	if rotate && l.o.sync == SyncAlways && len(l.buf) > 0 {
		return true, nil
	}
	if !rotate && l.o.sync != SyncAlways && len(l.buf) > 0 && len(l.buf)+int(size) > 16*l.o.flushBytes {
		// The buffer is full: it must reach the file before it takes more.
		if err := l.flushLocked(); err != nil {
			return false, err
		}
	}
	need := size
	if rotate {
		need += segmentHeaderSize
	}
	for l.diskBytes+int64(len(l.buf))+need > l.o.maxBytes {
		if l.deleteTrimmedLocked() > 0 {
			continue
		}
		if l.o.overflow == Refuse || len(l.segs) < 2 {
			l.stats.Refused++
			return false, fmt.Errorf("%w: %d of %d bytes", ErrFull, l.diskBytes+int64(len(l.buf)), l.o.maxBytes)
		}
		if err := l.dropOldestLocked(); err != nil {
			return false, err
		}
	}
	if rotate {
		if err := l.rotateLocked(); err != nil {
			return false, err
		}
	}
	return false, nil
}

// rotateLocked seals the active segment (writing its buffer) and starts the next one.
func (l *Log) rotateLocked() error {
	if l.active != nil {
		if err := l.flushLocked(); err != nil {
			return err
		}
		if l.wTail {
			if err := l.w.Truncate(l.written); err == nil {
				l.wTail = false
			}
		}
		if l.o.sync == SyncNever {
			l.w.Close()
		} else {
			l.unsynced = append(l.unsynced, l.w)
		}
		l.active, l.w = nil, nil
	}
	// Past every segment file Open saw, not only the live ones: a foreign segment, or a stale one
	// that could not be removed, keeps its name, and O_EXCL would fail on it at every Append.
	index := l.lastIndex + 1
	seg := &segment{index: index, name: segmentName(index), trim: startState(), validEnd: segmentHeaderSize,
		endOrd: l.nextOrd, endPos: l.nextPos, sourceID: l.sourceID}
	seg.path = filepath.Join(l.dir, seg.name)
	f, err := l.fs.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			l.lastIndex = index // a file that came after Open: the next try goes past it
		}
		l.stats.WriteErrors++
		return writeErr("create", seg.path, err)
	}
	l.lastIndex = index // the file exists now, even if its header fails and it cannot be removed
	hdr := encodeSegmentHeader(index, l.sourceID)
	if n, err := f.WriteAt(hdr, 0); err != nil || n < len(hdr) {
		if err == nil {
			err = errShortWrite
		}
		f.Close()
		l.fs.Remove(seg.path)
		l.stats.WriteErrors++
		return writeErr("write", seg.path, err)
	}
	seg.size = segmentHeaderSize
	l.segs = append(l.segs, seg)
	l.active, l.w, l.written, l.wTail, l.wDirty = seg, f, segmentHeaderSize, false, true
	l.diskBytes += segmentHeaderSize
	l.dirDirty = true
	l.deleteTrimmedLocked()
	return nil
}

// flushLocked writes the buffer to the active segment. On failure the buffer is kept, to be
// written again at the same offset.
func (l *Log) flushLocked() error {
	if len(l.buf) == 0 {
		return nil
	}
	n, err := l.w.WriteAt(l.buf, l.written)
	if err == nil && n < len(l.buf) {
		err = errShortWrite
	}
	if err != nil {
		l.wTail = true
		l.stats.WriteErrors++
		err = writeErr("write", l.active.path, err)
		if l.flushErr == nil {
			l.log.Error().Err(err).Int("buffered", len(l.buf)).Msg("spill write failed; retrying")
		}
		l.flushErr = err
		return err
	}
	if l.flushErr != nil {
		l.log.Info().Msg("spill writes resumed")
		l.flushErr = nil
	}
	seg, d := l.active, l.bufd
	if l.tail.limit > 0 {
		// The written bytes stay as they are, for reads; the buffer goes on after them.
		l.tail.add(seg, l.written, l.buf[:n])
	}
	if !seg.hasFrames {
		seg.hasFrames = true
		seg.firstOff, seg.firstOrd, seg.firstPos = l.written, d.startOrd, d.startPos
	}
	if seg.records == 0 {
		seg.firstSeq = d.firstSeq
	}
	seg.records += d.records
	seg.bytes += d.bytes
	seg.lastSeq = d.lastSeq
	seg.endOrd, seg.endPos = l.nextOrd, l.nextPos
	l.written += int64(n)
	seg.size, seg.validEnd = l.written, l.written
	l.diskBytes += int64(n)
	l.wDirty = true
	if l.tail.limit > 0 {
		l.buf = l.buf[n:n]
	} else {
		l.buf = l.buf[:0]
		if cap(l.buf) > 4*l.o.flushBytes && l.o.sync != SyncAlways {
			l.buf = nil
		}
	}
	l.bufd = bufInfo{startOrd: l.nextOrd, startPos: l.nextPos, prevSeq: l.lastSeq}
	if d.firstSeq <= l.trimmedSeq {
		l.advanceTrimLocked()
	}
	return nil
}

// rollbackLocked forgets the buffered records of a failed SyncAlways batch: their Appends fail.
// The whole frames the failed write got into the file go too (see cutTailLocked).
func (l *Log) rollbackLocked() {
	d := l.bufd
	l.nextOrd, l.nextPos, l.lastSeq = d.startOrd, d.startPos, max(d.prevSeq, l.trimmedSeq)
	l.stats.Appended -= uint64(d.records)
	l.stats.AppendedBytes -= uint64(d.bytes)
	l.buf = l.buf[:0]
	l.bufd = bufInfo{startOrd: l.nextOrd, startPos: l.nextPos, prevSeq: l.lastSeq}
	l.cutTailLocked()
}

// cutTailLocked cuts the active segment back to l.written after a failed write, under
// SyncAlways, where nothing past l.written belongs to a record an Append was told is stored:
// whole frames left there would come back at the next Open as records whose Append failed. The
// fsync that follows makes the cut durable. If the cut fails, wTail stays set, and the next
// commit, a rotation or Close tries again.
func (l *Log) cutTailLocked() {
	if !l.wTail || l.w == nil {
		return
	}
	if err := l.w.Truncate(l.written); err != nil {
		l.log.Error().Err(err).Msg("cannot cut a failed write off the active segment; it would replay records whose Append failed")
		return
	}
	l.wTail, l.wDirty = false, true
}

// commit waits until batch b, holding record seq, is written and fsynced, doing it if nobody else
// is. Every Append of a batch wakes at once when the batch is committed; while one commit runs,
// the Appends that come meanwhile gather in the next batch, which one of them commits next.
func (l *Log) commit(b *batch, seq uint64) error {
	select {
	case <-b.done:
		return b.result(seq)
	case l.syncSem <- struct{}{}:
	}
	defer func() { <-l.syncSem }()
	select {
	case <-b.done:
	default:
		l.syncLocked() // b is the pending batch: this commits it
	}
	return b.result(seq)
}

// Sync writes everything appended and fsyncs it, whatever the policy; under SyncNever, except
// the segments sealed since the last Sync (a rotation closes them unsynced under that policy).
func (l *Log) Sync() error {
	l.syncSem <- struct{}{}
	defer func() { <-l.syncSem }()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return l.syncLocked()
}

// syncLocked is one group commit: write the buffer, fsync the sealed segments, the active one
// and the directory, persist the trim point. Called holding syncSem.
func (l *Log) syncLocked() error {
	l.mu.Lock()
	b := l.batch
	if b != nil {
		l.batch = newBatch()
	}
	err := l.flushLocked()
	var failedFrom uint64
	if l.o.sync == SyncAlways {
		if err != nil {
			failedFrom = l.bufd.firstSeq
			l.rollbackLocked()
		} else {
			l.cutTailLocked() // what an earlier failed write left, if cutting it failed then
		}
	}
	files := l.unsynced
	l.unsynced = nil
	var w File
	if l.wDirty {
		w = l.w
		l.wDirty = false
	}
	dirDirty := l.dirDirty
	l.dirDirty = false
	dirty := w != nil || len(files) > 0 || dirDirty
	l.mu.Unlock()

	var serr error
	for _, f := range files {
		if e := f.Sync(); e != nil && !errors.Is(e, os.ErrClosed) && serr == nil {
			serr = writeErr("sync", "sealed segment", e)
		}
		f.Close()
	}
	if w != nil {
		if e := w.Sync(); e != nil && !errors.Is(e, os.ErrClosed) && serr == nil {
			serr = writeErr("sync", "active segment", e)
		}
	}
	if dirDirty {
		if e := l.fs.SyncDir(l.dir); e != nil && serr == nil {
			serr = writeErr("sync", l.dir, e)
		}
	}

	l.mu.Lock()
	if serr != nil {
		l.stats.SyncErrors++
		if dirDirty {
			l.dirDirty = true
		}
		if l.syncErr == nil {
			l.log.Error().Err(serr).Msg("spill fsync failed")
		}
		l.syncErr = serr
	} else if dirty {
		l.stats.Syncs++
		l.lastSync = l.o.clock.Now()
		l.syncErr = nil
	}
	if e := l.persistTrimLocked(); e != nil && serr == nil {
		serr = e
	}
	l.mu.Unlock()
	if b != nil {
		if err != nil {
			b.writeErr, b.failedFrom = err, failedFrom
		}
		b.err = serr
		close(b.done)
	}
	if err == nil {
		err = serr
	}
	return err
}

// syncLoop is the SyncInterval group commit.
func (l *Log) syncLoop() {
	defer close(l.done)
	tick, stop := l.o.clock.Tick(l.o.interval)
	defer stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick:
			l.syncSem <- struct{}{}
			l.syncLocked() // failures are counted, logged and retried next tick
			<-l.syncSem
		}
	}
}

// writeMetaLocked persists the meta file with the given sequence limit and the current trim
// point and head. If the atomic replacement fails (a full disk cannot hold meta.tmp), it
// overwrites the file in place: 120 bytes in one sector, checked by their CRC when read.
func (l *Log) writeMetaLocked(seqLimit uint64) error {
	m := meta{sourceID: l.sourceID, nextSeq: seqLimit, trimmedSeq: l.trimmedSeq, headOrd: l.headOrd, headPos: l.headPos}
	b := encodeMeta(m)
	path := filepath.Join(l.dir, metaName)
	err := writeAtomic(l.fs, l.dir, path, b)
	if err != nil {
		f, oerr := l.fs.OpenFile(path, os.O_WRONLY, 0)
		if oerr == nil {
			_, oerr = f.WriteAt(b, 0)
			if oerr == nil {
				oerr = f.Sync()
			}
			f.Close()
		}
		if oerr != nil {
			l.stats.WriteErrors++
			return err
		}
	}
	l.persistedTrim = m.trimmedSeq
	l.metaWritten = l.o.clock.Now()
	return nil
}

// persistTrimLocked writes a moved trim point to the meta file, at most once per sync interval
// (SyncNever: only with segment deletions and at Close).
func (l *Log) persistTrimLocked() error {
	if l.trimmedSeq == l.persistedTrim || l.closed || l.o.sync == SyncNever {
		return nil
	}
	if l.o.clock.Now().Sub(l.metaWritten) < l.o.interval {
		return nil
	}
	return l.writeMetaLocked(l.seqLimit)
}

// deleteTrimmedLocked deletes the sealed segments at the front whose records are all trimmed.
// The trim point passes valid frames only, so it is compared with the end of the last one, not
// with the file's size: a sealed segment may end in bytes no frame can be read from (a torn
// tail Open did not cut because a segment came after it, or anything after a header so damaged
// that Open started a new segment rather than append to it).
func (l *Log) deleteTrimmedLocked() int {
	n := 0
	for n < len(l.segs) && l.segs[n] != l.active && l.segs[n].trimRecs == l.segs[n].records && l.segs[n].trim.off >= l.segs[n].validEnd {
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
	l.headOrd, l.headPos = last.endOrd, last.endPos
	if err := l.writeMetaLocked(l.seqLimit); err != nil {
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
		if l.cur.seg == seg {
			l.cur = cursor{}
		}
	}
	l.segs = append(l.segs[:0:0], l.segs[n:]...)
	l.fixCursorLocked()
	return nil
}

// Close writes and (unless SyncNever) fsyncs what is buffered, records the exact next sequence
// number and the trim point, and releases the directory. If buffered records cannot be written
// (a full disk) they are lost, and Close says so in its error. Close is idempotent.
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
	if n := l.bufd.records; n > 0 {
		l.log.Error().Err(err).Int("records", n).Msg("closing with records that could not be written: they are lost")
	}
	// Past l.written lies what a failed write left. Under SyncAlways it is never a record an
	// Append was told is stored (their failed writes were rolled back), and is cut (here if the
	// cut after the rollback failed), durably; otherwise it may be, while the last write
	// failed, and whole frames of it are then kept for the next Open.
	if l.wTail && l.w != nil && (l.flushErr == nil || l.o.sync == SyncAlways) {
		if e := l.w.Truncate(l.written); e == nil && l.o.sync != SyncNever {
			l.w.Sync()
		}
	}
	if l.nextSeq <= l.seqLimit {
		if e := l.writeMetaLocked(l.nextSeq); e == nil {
			l.seqLimit = l.nextSeq
		} else if err == nil {
			err = e
		}
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
	if l.w != nil {
		l.w.Close()
		l.w = nil
	}
	for _, f := range l.unsynced {
		f.Close()
	}
	l.unsynced = nil
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
	s.DiskBytes = l.diskBytes + int64(len(l.buf))
	s.NextSeq, s.LastSeq, s.TrimmedSeq = l.nextSeq, l.lastSeq, l.trimmedSeq
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
	n, b := l.bufd.records, l.bufd.bytes
	for _, seg := range l.segs {
		r, rb := seg.pending()
		n += r
		b += rb
	}
	return n, b
}
