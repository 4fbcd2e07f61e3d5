package spill

import (
	"context"
	"os"
)

// The read side of a Log: Read, Rewind, Trim and Drain, for the one consumer. Its state is the
// reader; it shares Log.segs, Log.tail and Log.stats with the write side, all under Log.mu, and
// reads what the writer has written (never its buffer: Read has the writer write it first).

// reader is the read side's state. Guarded by Log.mu.
type reader struct {
	trimmedSeq uint64 // every record with a log number <= trimmedSeq is trimmed
	cur        cursor
	// marks remember where the records Read handed out end, for Trim (see tail.go).
	marks   readMarks
	scratch []byte // scan window for trimming
}

// cursor is the read position: a segment and the scan state in it. A nil segment means the
// oldest untrimmed record.
type cursor struct {
	seg *segment
	st  scanState
	// recs and bytes count the records of seg before st.off and their payload bytes, as the
	// trimmed prefix does (segment.trimRecs, trimBytes); the read marks take them.
	recs  int
	bytes int64
	// win holds bytes of seg read earlier, from file offset winOff (winMem: from the tail).
	// The records handed out alias it, so it is never written to again: the next Read goes on
	// from it, and a read past it gets a new buffer.
	win      []byte
	winOff   int64
	winMem   bool
	winArena *writeArena // the tail's array win lies in, when winMem
}

// cursorAtTrim is the cursor at seg's oldest untrimmed record.
func cursorAtTrim(seg *segment) cursor {
	return cursor{seg: seg, st: seg.trim, recs: seg.trimRecs, bytes: seg.trimBytes}
}

// readWindow is the most a Read reads from a segment at a time. Records share the buffers they
// were read into.
const readWindow = 1 << 20

// Read appends up to max records that follow the read cursor to dst, oldest first, and moves
// the cursor past them. It returns no records, and a nil error, when the cursor has caught up.
// Reading deletes nothing: Trim does, once the records are delivered, and Rewind moves the
// cursor back to the oldest untrimmed record to read them again. A record's Data shares a
// buffer of about 1 MiB with its neighbours (a read buffer, or the write buffer the record was
// appended into, when it is read from the tail kept in memory: see WithTailBytes); the log
// never writes to it again, so Data stays valid for as long as the caller keeps it (with
// WithReadsReleasedByTrim: until a Trim covers the record). Records
// appended concurrently may be read before their Append returns.
func (l *Log) Read(dst []Record, max int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return dst, ErrClosed
	}
	l.fixCursorLocked()
	var lastSeq uint64 // log number of the last record handed out
	if l.tail.releaseOnTrim {
		defer func() {
			if lastSeq != 0 {
				l.tail.lent(lastSeq)
			}
		}()
	}
	want := len(dst) + max
	for len(dst) < want && l.rd.cur.seg != nil {
		seg := l.rd.cur.seg
		end := seg.size
		if seg == l.wr.active {
			if l.rd.cur.st.off >= l.wr.written && len(l.wr.buf) > 0 {
				if err := l.flushLocked(); err != nil {
					return dst, err
				}
			}
			end = l.wr.written
		}
		if l.rd.cur.st.off < end {
			r, err := l.readerLocked(seg)
			if err != nil {
				return dst, err
			}
			sc := newScanner(r, l.rd.cur.st, end, int(min(end-l.rd.cur.st.off, readWindow)), true)
			sc.win, sc.winOff, sc.winMem, sc.winArena = l.rd.cur.win, l.rd.cur.winOff, l.rd.cur.winMem, l.rd.cur.winArena
			if l.tail.releaseOnTrim && l.rd.cur.winArena != nil {
				// Records handed out from the cursor's window alias its arena too.
				l.tail.lending = append(l.tail.lending, l.rd.cur.winArena)
			}
			sc.mem, sc.seg = &l.tail, seg
			var mark readMark // after the last record handed out from seg
			for len(dst) < want {
				f, skipped, lost, ok := sc.next()
				l.noteReadDamageLocked(seg, skipped, lost)
				if !ok {
					break
				}
				if f.typ != typeRecord {
					continue
				}
				l.rd.cur.recs++
				l.rd.cur.bytes += int64(f.length)
				if f.seq > l.rd.trimmedSeq {
					dst = append(dst, Record{Seq: l.num.number(f.seq), Data: f.payload[:len(f.payload):len(f.payload)]})
					mark.seq, mark.after, mark.recs, mark.bytes = f.seq, sc.st, l.rd.cur.recs, l.rd.cur.bytes
					lastSeq = f.seq
				}
			}
			if mark.seq != 0 {
				mark.seg = seg
				l.rd.marks.push(mark)
			}
			l.rd.cur.st, l.rd.cur.win, l.rd.cur.winOff, l.rd.cur.winMem, l.rd.cur.winArena = sc.st, sc.win, sc.winOff, sc.winMem, sc.winArena
			if sc.err != nil {
				return dst, &WriteError{Op: "read", Path: seg.path, Err: sc.err}
			}
			if len(dst) >= want {
				break
			}
		}
		if seg == l.wr.active {
			if len(l.wr.buf) == 0 {
				break
			}
			continue // the buffer is written at the top of the loop, then read
		}
		if !l.nextSegmentLocked() {
			break
		}
	}
	return dst, nil
}

// nextSegmentLocked moves the cursor to the start of the segment after its own.
func (l *Log) nextSegmentLocked() bool {
	for i, seg := range l.segs {
		if seg == l.rd.cur.seg {
			if i+1 >= len(l.segs) {
				return false
			}
			if seg.rf != nil {
				seg.rf.Close()
				seg.rf = nil
			}
			l.rd.cur = cursorAtTrim(l.segs[i+1])
			return true
		}
	}
	return false
}

// noteReadDamageLocked logs damage a read meets that the scan at Open did not see (the file
// changed under the log), and counts what it cost.
func (l *Log) noteReadDamageLocked(seg *segment, skipped span, lost gap) {
	if skipped.n == 0 && lost.records == 0 && lost.bytes == 0 {
		return
	}
	for _, d := range seg.damage {
		if d.Offset == skipped.off || (skipped.n == 0 && d.Offset <= skipped.off) {
			return
		}
	}
	seg.damage = append(seg.damage, Damage{
		CorruptionError: CorruptionError{Segment: seg.name, Offset: skipped.off, Err: skipped.err},
		Length:          skipped.n, LostRecords: lost.records, LostBytes: lost.bytes,
	})
	l.stats.LostRecords += lost.records
	l.stats.LostBytes += lost.bytes
	l.log.Warn().Str("segment", seg.name).Int64("offset", skipped.off).Int64("length", skipped.n).
		Uint64("lost_records", lost.records).AnErr("reason", skipped.err).Msg("damage found while reading")
}

// readerLocked returns a handle to read seg: the write handle of the active segment, or a read
// handle kept open while the cursor or the trimmer is in a sealed one.
func (l *Log) readerLocked(seg *segment) (File, error) {
	if seg == l.wr.active {
		return l.wr.f, nil
	}
	if seg.rf == nil {
		f, err := l.fs.OpenFile(seg.path, os.O_RDONLY, 0)
		if err != nil {
			return nil, &WriteError{Op: "open", Path: seg.path, Err: err}
		}
		seg.rf = f
	}
	return seg.rf, nil
}

// fixCursorLocked puts the cursor at the oldest untrimmed record if it is unset or behind it.
func (l *Log) fixCursorLocked() {
	if len(l.segs) == 0 {
		l.rd.cur = cursor{}
		return
	}
	if l.rd.cur.seg == nil {
		l.rd.cur = cursorAtTrim(l.segs[0])
	}
	for _, seg := range l.segs {
		if seg == l.rd.cur.seg {
			if l.rd.cur.st.off < seg.trim.off {
				l.rd.cur.st, l.rd.cur.recs, l.rd.cur.bytes = seg.trim, seg.trimRecs, seg.trimBytes
			}
			return
		}
		if seg.trimRecs < seg.records {
			// An untrimmed record lies before the cursor's segment: only a Rewind does that;
			// nothing to fix.
			return
		}
	}
	l.rd.cur = cursorAtTrim(l.segs[0])
}

// Rewind moves the read cursor back to the oldest untrimmed record, to read again what was
// read but not delivered.
func (l *Log) Rewind() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rd.cur = cursor{}
	l.rd.marks.clear()
	l.fixCursorLocked()
}

// Trim discards the untrimmed records numbered up to throughSeq, oldest first: once delivered,
// or in acknowledged mode once acknowledged. Numbers grow along the untrimmed records (Renumber
// keeps them so), so these are every untrimmed record numbered <= throughSeq. Segments whose
// records are all trimmed are deleted. The trim point reaches the meta file at most once per
// sync interval (100 ms by default; under SyncNever only when segments are deleted), when
// segments are deleted, and at Close: a crash may replay records trimmed since, never lose
// untrimmed ones.
func (l *Log) Trim(throughSeq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	upToSeq := l.num.through(throughSeq, l.rd.trimmedSeq+1, l.wr.lastSeq+1)
	if upToSeq <= l.rd.trimmedSeq {
		return nil
	}
	l.rd.trimmedSeq = upToSeq
	if l.wr.bufd.records > 0 && l.wr.bufd.firstSeq <= upToSeq {
		if err := l.flushLocked(); err != nil {
			return err // the buffered records are counted as trimmed once written
		}
	}
	l.advanceTrimLocked()
	l.deleteTrimmedLocked()
	l.fixCursorLocked()
	l.releaseTailLocked()
	if l.tail.releaseOnTrim {
		// After the tail let go of what lies before the trim point: the lent arenas it
		// retired just now are free at once, not at the next Trim.
		l.tail.releaseTrimmed(l.rd.trimmedSeq, func(a *writeArena) {
			if l.rd.cur.winArena == a {
				l.rd.cur.win, l.rd.cur.winOff, l.rd.cur.winMem, l.rd.cur.winArena = nil, 0, false, nil
			}
		})
	}
	return l.persistTrimLocked()
}

// releaseTailLocked lets the tail drop what lies before the trim point: no Read goes there
// again, not even after a Rewind.
func (l *Log) releaseTailLocked() {
	for i, seg := range l.segs {
		if seg.trimRecs < seg.records || i == len(l.segs)-1 {
			l.tail.release(seg, seg.trim.off)
			return
		}
	}
}

// advanceTrimLocked moves each segment's trimmed prefix past the records with seq <=
// trimmedSeq, counting them.
func (l *Log) advanceTrimLocked() {
	for _, seg := range l.segs {
		l.trimReadLocked(seg)
		end := seg.size
		if seg == l.wr.active {
			end = l.wr.written
		}
		if seg.trimRecs < seg.records && seg.trim.off < end {
			r, err := l.readerLocked(seg)
			if err != nil {
				l.log.Warn().Err(err).Msg("cannot trim")
				return
			}
			sc := newScanner(r, seg.trim, end, defaultWindow, false)
			sc.buf, sc.mem, sc.seg = l.rd.scratch, &l.tail, seg
			for {
				f, _, _, ok := sc.next()
				if !ok || f.typ == typeRecord && f.seq > l.rd.trimmedSeq {
					break
				}
				if f.typ == typeRecord {
					seg.trimRecs++
					seg.trimBytes += int64(f.length)
					l.stats.Trimmed++
					l.stats.TrimmedBytes += uint64(f.length)
				}
				seg.trim = sc.st
			}
			l.rd.scratch = sc.buf[:0]
		}
		if seg.trimRecs < seg.records {
			return
		}
	}
}

// trimReadLocked moves seg's trimmed prefix over the records Read handed out with seq <=
// trimmedSeq, from their read marks, without scanning them again: a scan from the trim point
// would pass the same frames and stop no earlier, since every record before a mark has a
// smaller seq. Marks of older segments are dropped.
func (l *Log) trimReadLocked(seg *segment) {
	for {
		m, ok := l.rd.marks.first()
		if !ok || m.seg.index > seg.index || m.seg == seg && m.seq > l.rd.trimmedSeq {
			return
		}
		if m.seg == seg && m.after.off > seg.trim.off && m.recs >= seg.trimRecs {
			l.stats.Trimmed += uint64(m.recs - seg.trimRecs)
			l.stats.TrimmedBytes += uint64(m.bytes - seg.trimBytes)
			seg.trim, seg.trimRecs, seg.trimBytes = m.after, m.recs, m.bytes
		}
		l.rd.marks.pop()
	}
}

// Drain delivers the untrimmed records oldest first, in batches of up to max, and trims each
// batch deliver accepts. It starts from the oldest untrimmed record and stops when it has caught
// up (returning nil), when ctx is done, or when deliver fails: the batch is then not trimmed and
// the cursor is rewound, so the next Drain starts with it again. It returns how many records
// were delivered.
func (l *Log) Drain(ctx context.Context, max int, deliver func([]Record) error) (int, error) {
	l.Rewind()
	n := 0
	var batch []Record
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var err error
		batch, err = l.Read(batch[:0], max)
		if err != nil {
			return n, err
		}
		if len(batch) == 0 {
			return n, nil
		}
		if err := deliver(batch); err != nil {
			l.Rewind()
			return n, err
		}
		n += len(batch)
		if err := l.Trim(batch[len(batch)-1].Seq); err != nil {
			return n, err
		}
	}
}
