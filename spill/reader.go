package spill

import (
	"context"
	"os"
)

// cursor is the read position: a segment and the scan state in it. A nil segment means the
// oldest untrimmed record.
type cursor struct {
	seg *segment
	st  scanState
	// win holds bytes of seg read earlier, from file offset winOff. The records handed out
	// alias it, so it is never written to again: the next Read goes on from it, and a read
	// past it gets a new buffer.
	win    []byte
	winOff int64
}

// readWindow is the most a Read reads from a segment at a time. Records share the buffers they
// were read into.
const readWindow = 1 << 20

// Read appends up to max records that follow the read cursor to dst, oldest first, and moves
// the cursor past them. It returns no records, and a nil error, when the cursor has caught up.
// Reading deletes nothing: Trim does, once the records are delivered, and Rewind moves the
// cursor back to the oldest untrimmed record to read them again. A record's Data shares a
// read buffer of up to 1 MiB with its neighbours; the log never writes to it again, so Data
// stays valid for as long as the caller keeps it. Records appended concurrently may be read before their Append returns.
func (l *Log) Read(dst []Record, max int) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return dst, ErrClosed
	}
	l.fixCursorLocked()
	want := len(dst) + max
	for len(dst) < want && l.cur.seg != nil {
		seg := l.cur.seg
		end := seg.size
		if seg == l.active {
			if l.cur.st.off >= l.written && len(l.buf) > 0 {
				if err := l.flushLocked(); err != nil {
					return dst, err
				}
			}
			end = l.written
		}
		if l.cur.st.off < end {
			r, err := l.readerLocked(seg)
			if err != nil {
				return dst, err
			}
			sc := newScanner(r, l.cur.st, end, int(min(end-l.cur.st.off, readWindow)), true)
			sc.win, sc.winOff = l.cur.win, l.cur.winOff
			for len(dst) < want {
				f, skipped, lost, ok := sc.next()
				l.noteReadDamageLocked(seg, skipped, lost)
				if !ok {
					break
				}
				if f.typ == typeRecord && f.seq > l.trimmedSeq {
					dst = append(dst, Record{Seq: f.seq, Data: f.payload[:len(f.payload):len(f.payload)]})
				}
			}
			l.cur.st, l.cur.win, l.cur.winOff = sc.st, sc.win, sc.winOff
			if sc.err != nil {
				return dst, &WriteError{Op: "read", Path: seg.path, Err: sc.err}
			}
			if len(dst) >= want {
				break
			}
		}
		if seg == l.active {
			if len(l.buf) == 0 {
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
		if seg == l.cur.seg {
			if i+1 >= len(l.segs) {
				return false
			}
			if seg.rf != nil {
				seg.rf.Close()
				seg.rf = nil
			}
			next := l.segs[i+1]
			l.cur = cursor{seg: next, st: next.trim}
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
	if seg == l.active {
		return l.w, nil
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
		l.cur = cursor{}
		return
	}
	if l.cur.seg == nil {
		l.cur = cursor{seg: l.segs[0], st: l.segs[0].trim}
	}
	for _, seg := range l.segs {
		if seg == l.cur.seg {
			if l.cur.st.off < seg.trim.off {
				l.cur.st = seg.trim
			}
			return
		}
		if seg.trimRecs < seg.records {
			// An untrimmed record lies before the cursor's segment: only a Rewind does that;
			// nothing to fix.
			return
		}
	}
	l.cur = cursor{seg: l.segs[0], st: l.segs[0].trim}
}

// Rewind moves the read cursor back to the oldest untrimmed record, to read again what was
// read but not delivered.
func (l *Log) Rewind() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur = cursor{}
	l.fixCursorLocked()
}

// Trim discards every record with a sequence number <= upToSeq: once delivered, or in
// acknowledged mode once acknowledged. Segments whose records are all trimmed are deleted.
// The trim point reaches the meta file at most once per sync interval (100 ms by default; under
// SyncNever only when segments are deleted), when segments are deleted, and at Close: a crash
// may replay records trimmed since, never lose untrimmed ones.
func (l *Log) Trim(upToSeq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	upToSeq = min(upToSeq, l.nextSeq-1)
	if upToSeq <= l.trimmedSeq {
		return nil
	}
	l.trimmedSeq = upToSeq
	l.lastSeq = max(l.lastSeq, upToSeq) // a trimmed number is never stored again
	if l.bufd.records > 0 && l.bufd.firstSeq <= upToSeq {
		if err := l.flushLocked(); err != nil {
			return err // the buffered records are counted as trimmed once written
		}
	}
	l.advanceTrimLocked()
	l.deleteTrimmedLocked()
	l.fixCursorLocked()
	return l.persistTrimLocked()
}

// advanceTrimLocked moves each segment's trimmed prefix past the records with seq <=
// trimmedSeq, counting them.
func (l *Log) advanceTrimLocked() {
	for _, seg := range l.segs {
		end := seg.size
		if seg == l.active {
			end = l.written
		}
		if seg.trimRecs < seg.records && seg.trim.off < end {
			r, err := l.readerLocked(seg)
			if err != nil {
				l.log.Warn().Err(err).Msg("cannot trim")
				return
			}
			sc := newScanner(r, seg.trim, end, defaultWindow, false)
			sc.win = l.scratch
			for {
				f, _, _, ok := sc.next()
				if !ok || f.typ == typeRecord && f.seq > l.trimmedSeq {
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
			l.scratch = sc.win[:0]
		}
		if seg.trimRecs < seg.records {
			return
		}
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
