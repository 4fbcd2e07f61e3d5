package spill

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The write side of a Log: Append, the active segment, the write buffer, rotation and the group
// commit. Its state is the writer; it shares Log.segs, Log.tail, Log.diskBytes and Log.stats
// with the read side, all under Log.mu.

// writer is the write side's state. Guarded by Log.mu.
type writer struct {
	lastSeq   uint64   // highest log number stored (written or buffered), or trimmed at Open
	nextOrd   uint64   // ord and pos of the next frame appended
	nextPos   uint64   //
	lastIndex uint64   // the highest segment index created, or seen in the directory at Open
	active    *segment // nil: the next Append starts a segment
	f         File     // the active segment, open for writing
	written   int64    // bytes of the active segment in its file
	dirty     bool     // bytes written since the last fsync
	badTail   bool     // a failed write may have left garbage past written
	buf       []byte   // frames appended but not yet written, going at offset written
	bufd      bufInfo
	unsynced  []File // sealed segments still to fsync and close
	dirDirty  bool   // a segment was created since the last directory fsync
	flushErr  error  // the last write failed; cleared by a successful one
	syncErr   error  // the last sync failed
	batch     *batch // SyncAlways: the group commit the next Append joins
	lastSync  time.Time
}

// bufInfo describes the records in writer.buf.
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
	failedFrom uint64 // log number of the first record rolled back, 0 if none
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// result is what the Append of log number seq returns once b is committed.
func (b *batch) result(seq uint64) error {
	if b.writeErr != nil && seq >= b.failedFrom {
		return b.writeErr
	}
	if b.err != nil {
		return fmt.Errorf("%w: %w", ErrNotSynced, b.err)
	}
	return nil
}

// Append stores rec after every record already stored and returns its number: NextSeq() before
// the call (numbers are dense, see Renumber for the exception). Under SyncAlways it returns once
// the record is fsynced; otherwise at once (see SyncPolicy for the loss window). On error
// nothing was stored: ErrFull (Refuse policy), ErrRecordTooLarge, ErrClosed, or a *WriteError
// (errors.Is(err, ErrNoSpace) for a full disk); the number is then given to the next record.
// Under SyncAlways a failed fsync is the one exception, errors.Is(err, ErrNotSynced): the record
// is stored, under the number returned with the error, and may or may not survive a crash of the
// machine.
func (l *Log) Append(rec []byte) (uint64, error) {
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
	w := &l.wr
	seq := w.lastSeq + 1
	if len(w.buf) == 0 {
		w.bufd = bufInfo{startOrd: w.nextOrd, startPos: w.nextPos, prevSeq: w.lastSeq, firstSeq: seq}
	}
	if l.tail.limit > 0 && cap(w.buf)-len(w.buf) < int(size) {
		l.growBufLocked(int(size))
	}
	w.buf = appendFrame(w.buf, typeRecord, seq, w.nextOrd, w.nextPos, rec)
	w.bufd.records++
	w.bufd.bytes += int64(len(rec))
	w.bufd.lastSeq = seq
	w.nextOrd++
	w.nextPos += uint64(len(rec))
	w.lastSeq = seq
	l.stats.Appended++
	l.stats.AppendedBytes += uint64(len(rec))
	num := l.num.number(seq)
	if l.o.sync == SyncAlways {
		b := w.batch
		l.mu.Unlock()
		return num, l.commit(b, seq)
	}
	if len(w.buf) >= l.o.flushBytes {
		l.flushLocked() // a failure keeps the buffer; it is retried, and reported when it is full
	}
	l.mu.Unlock()
	return num, nil
}

// growBufLocked moves the write buffer to another arena with room for n more bytes. The old
// one is left to the tail: bytes written from it are not written to again while the tail keeps
// them, nor ever once Read has handed them out. An arena holds at least a flush, and a quarter
// of the tail up to writeBufferSize.
func (l *Log) growBufLocked(n int) {
	l.wr.buf = l.tail.grow(l.wr.buf, n, max(l.o.flushBytes, int(min(writeBufferSize, l.tail.limit/4))))
}

// roomLocked makes room for a frame of size bytes: it starts a segment if the active one cannot
// take it, and applies the overflow policy if the size cap would be passed. needSync asks the
// caller to commit the pending SyncAlways batch first.
func (l *Log) roomLocked(size int64) (needSync bool, err error) {
	w := &l.wr
	rotate := w.active == nil || w.written+int64(len(w.buf))+size > l.o.segmentSize
	if rotate && l.o.sync == SyncAlways && len(w.buf) > 0 {
		return true, nil
	}
	if !rotate && l.o.sync != SyncAlways && len(w.buf) > 0 && len(w.buf)+int(size) > 16*l.o.flushBytes {
		// The buffer is full: it must reach the file before it takes more.
		if err := l.flushLocked(); err != nil {
			return false, err
		}
	}
	need := size
	if rotate {
		need += segmentHeaderSize
	}
	for l.diskBytes+int64(len(w.buf))+need > l.o.maxBytes {
		if l.deleteTrimmedLocked() > 0 {
			continue
		}
		if l.o.overflow == Refuse || len(l.segs) < 2 {
			l.stats.Refused++
			return false, fmt.Errorf("%w: %d of %d bytes", ErrFull, l.diskBytes+int64(len(w.buf)), l.o.maxBytes)
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
	w := &l.wr
	if w.active != nil {
		if err := l.flushLocked(); err != nil {
			return err
		}
		if w.badTail {
			if err := w.f.Truncate(w.written); err == nil {
				w.badTail = false
			}
		}
		if l.o.sync == SyncNever {
			w.f.Close()
		} else {
			w.unsynced = append(w.unsynced, w.f)
		}
		w.active, w.f = nil, nil
	}
	// Past every segment file Open saw, not only the live ones: a foreign segment, or a stale one
	// that could not be removed, keeps its name, and O_EXCL would fail on it at every Append.
	index := w.lastIndex + 1
	seg := &segment{index: index, name: segmentName(index), trim: startState(), validEnd: segmentHeaderSize,
		endOrd: w.nextOrd, endPos: w.nextPos, sourceID: l.sourceID}
	seg.path = filepath.Join(l.dir, seg.name)
	f, err := l.fs.OpenFile(seg.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			w.lastIndex = index // a file that came after Open: the next try goes past it
		}
		l.stats.WriteErrors++
		return writeErr("create", seg.path, err)
	}
	w.lastIndex = index // the file exists now, even if its header fails and it cannot be removed
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
	w.active, w.f, w.written, w.badTail, w.dirty = seg, f, segmentHeaderSize, false, true
	l.diskBytes += segmentHeaderSize
	w.dirDirty = true
	l.deleteTrimmedLocked()
	return nil
}

// flushLocked writes the buffer to the active segment. On failure the buffer is kept, to be
// written again at the same offset.
func (l *Log) flushLocked() error {
	w := &l.wr
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.f.WriteAt(w.buf, w.written)
	if err == nil && n < len(w.buf) {
		err = errShortWrite
	}
	if err != nil {
		w.badTail = true
		l.stats.WriteErrors++
		err = writeErr("write", w.active.path, err)
		if w.flushErr == nil {
			l.log.Error().Err(err).Int("buffered", len(w.buf)).Msg("spill write failed; retrying")
		}
		w.flushErr = err
		return err
	}
	if w.flushErr != nil {
		l.log.Info().Msg("spill writes resumed")
		w.flushErr = nil
	}
	seg, d := w.active, w.bufd
	if l.tail.limit > 0 {
		// The written bytes stay as they are, for reads; the buffer goes on after them.
		l.tail.add(seg, w.written, w.buf[:n])
	}
	if !seg.hasFrames {
		seg.hasFrames = true
		seg.firstOff, seg.firstOrd, seg.firstPos = w.written, d.startOrd, d.startPos
	}
	if seg.records == 0 {
		seg.firstSeq = d.firstSeq
	}
	seg.records += d.records
	seg.bytes += d.bytes
	seg.lastSeq = d.lastSeq
	seg.endOrd, seg.endPos = w.nextOrd, w.nextPos
	w.written += int64(n)
	seg.size, seg.validEnd = w.written, w.written
	l.diskBytes += int64(n)
	w.dirty = true
	if l.tail.limit > 0 {
		w.buf = w.buf[n:n]
	} else {
		w.buf = w.buf[:0]
		if cap(w.buf) > 4*l.o.flushBytes && l.o.sync != SyncAlways {
			w.buf = nil
		}
	}
	w.bufd = bufInfo{startOrd: w.nextOrd, startPos: w.nextPos, prevSeq: w.lastSeq}
	if d.firstSeq <= l.rd.trimmedSeq {
		l.advanceTrimLocked() // records a Trim covered while they were buffered
	}
	return nil
}

// rollbackLocked forgets the buffered records of a failed SyncAlways batch: their Appends fail,
// and their numbers go to the next records. The whole frames the failed write got into the file
// go too (see cutTailLocked).
func (l *Log) rollbackLocked() {
	w := &l.wr
	d := w.bufd
	w.nextOrd, w.nextPos, w.lastSeq = d.startOrd, d.startPos, max(d.prevSeq, l.rd.trimmedSeq)
	l.stats.Appended -= uint64(d.records)
	l.stats.AppendedBytes -= uint64(d.bytes)
	w.buf = w.buf[:0]
	w.bufd = bufInfo{startOrd: w.nextOrd, startPos: w.nextPos, prevSeq: w.lastSeq}
	l.cutTailLocked()
}

// cutTailLocked cuts the active segment back to written after a failed write, under
// SyncAlways, where nothing past written belongs to a record an Append was told is stored:
// whole frames left there would come back at the next Open as records whose Append failed. The
// fsync that follows makes the cut durable. If the cut fails, badTail stays set, and the next
// commit, a rotation or Close tries again.
func (l *Log) cutTailLocked() {
	w := &l.wr
	if !w.badTail || w.f == nil {
		return
	}
	if err := w.f.Truncate(w.written); err != nil {
		l.log.Error().Err(err).Msg("cannot cut a failed write off the active segment; it would replay records whose Append failed")
		return
	}
	w.badTail, w.dirty = false, true
}

// commit waits until batch b, holding the record of log number seq, is written and fsynced,
// doing it if nobody else is. Every Append of a batch wakes at once when the batch is
// committed; while one commit runs, the Appends that come meanwhile gather in the next batch,
// which one of them commits next.
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
	w := &l.wr
	l.mu.Lock()
	b := w.batch
	if b != nil {
		w.batch = newBatch()
	}
	err := l.flushLocked()
	var failedFrom uint64
	if l.o.sync == SyncAlways {
		if err != nil {
			failedFrom = w.bufd.firstSeq
			l.rollbackLocked()
		} else {
			l.cutTailLocked() // what an earlier failed write left, if cutting it failed then
		}
	}
	files := w.unsynced
	w.unsynced = nil
	var f File
	if w.dirty {
		f = w.f
		w.dirty = false
	}
	dirDirty := w.dirDirty
	w.dirDirty = false
	dirty := f != nil || len(files) > 0 || dirDirty
	l.mu.Unlock()

	var serr error
	for _, sf := range files {
		if e := sf.Sync(); e != nil && !errors.Is(e, os.ErrClosed) && serr == nil {
			serr = writeErr("sync", "sealed segment", e)
		}
		sf.Close()
	}
	if f != nil {
		if e := f.Sync(); e != nil && !errors.Is(e, os.ErrClosed) && serr == nil {
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
			w.dirDirty = true
		}
		if w.syncErr == nil {
			l.log.Error().Err(serr).Msg("spill fsync failed")
		}
		w.syncErr = serr
	} else if dirty {
		l.stats.Syncs++
		w.lastSync = l.o.clock.Now()
		w.syncErr = nil
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
