package spill

import (
	"fmt"
	"math"
	"sort"
)

// Numbering. Every frame carries a log number (its seq field): strictly increasing along the
// log, from 1 for a new directory, one more per record appended, resuming after the highest
// number stored or trimmed at Open (docs/spill-format.md). The numbers the API speaks (Append,
// Read, Trim, Renumber, Stats) are record numbers, mapped from log numbers by spans kept in the
// meta file: from the log number from on (up to the next span), a record's number is
// num + (log number - from), modulo 2^64. A new directory has the one span (1, 0): record
// numbers are dense from 0. Renumber adds a span; spans wholly below the trim point are dropped
// when the meta file is written.

// seqSpan maps log numbers from `from` on to record numbers from `num` on.
type seqSpan struct{ from, num uint64 }

// numbering is the Log's map from log numbers to record numbers, and the unsent marker. Guarded
// by Log.mu.
type numbering struct {
	spans []seqSpan // ordered by from, strictly; never empty
	// unsent is the log number of the UnsentFrom marker: no record at or after it was handed
	// out since the Open that set it. 0: no marker (log numbers start at 1).
	unsent uint64
	// A cache of number: log numbers in [lo, hi) map with delta.
	lo, hi, delta uint64
}

// setSpans replaces the spans and empties the cache.
func (n *numbering) setSpans(spans []seqSpan) {
	n.spans = spans
	n.lo, n.hi = 1, 0
}

// number is the record number of log number seq (below every span: by the first span).
func (n *numbering) number(seq uint64) uint64 {
	if seq >= n.lo && seq < n.hi {
		return seq + n.delta
	}
	return n.lookup(seq)
}

// lookup is number outside the cached span: it finds seq's span and caches it.
func (n *numbering) lookup(seq uint64) uint64 {
	i := sort.Search(len(n.spans), func(i int) bool { return n.spans[i].from > seq }) - 1
	n.lo, n.hi = 0, math.MaxUint64
	if i < 0 {
		i = 0
		n.hi = n.spans[0].from
	} else {
		n.lo = n.spans[i].from
		if i+1 < len(n.spans) {
			n.hi = n.spans[i+1].from
		}
	}
	n.delta = n.spans[i].num - n.spans[i].from
	return seq + n.delta
}

// through returns the highest log number l in [lo, hi) whose record number is at most q, lo-1 if
// none, assuming that record numbers grow along [lo, hi) (Renumber keeps them so over the
// untrimmed records). It walks the spans in log order and stops at the first whose numbers
// start above q.
func (n *numbering) through(q, lo, hi uint64) uint64 {
	target := lo - 1
	for i, s := range n.spans {
		end := hi
		if i+1 < len(n.spans) {
			end = min(end, n.spans[i+1].from)
		}
		a := max(s.from, lo)
		if a >= end {
			continue
		}
		pa := s.num + (a - s.from)
		if q < pa {
			break
		}
		target = a + min(q-pa, end-1-a)
	}
	return target
}

// withSpan returns the spans with every span at or after log number from replaced by (from,
// num).
func (n *numbering) withSpan(from, num uint64) []seqSpan {
	k := sort.Search(len(n.spans), func(i int) bool { return n.spans[i].from >= from })
	out := make([]seqSpan, 0, k+1)
	out = append(out, n.spans[:k]...)
	return append(out, seqSpan{from: from, num: num})
}

// pruneSpans drops the spans wholly below log number first (the oldest untrimmed one): the
// last span at or below it stays, with every later one.
func pruneSpans(spans []seqSpan, first uint64) []seqSpan {
	k := sort.Search(len(spans), func(i int) bool { return spans[i].from > first }) - 1
	if k <= 0 {
		return spans
	}
	return append([]seqSpan(nil), spans[k:]...)
}

// dropSpansAbove drops the spans that start past log number next (saved for records a crash
// took before they were stored), keeping the first.
func dropSpansAbove(spans []seqSpan, next uint64) []seqSpan {
	k := sort.Search(len(spans), func(i int) bool { return spans[i].from > next })
	return spans[:max(k, 1)]
}

// NextSeq returns the number the next Append gives: in a directory never renumbered, how many
// records it has ever numbered. Safe for concurrent use.
func (l *Log) NextSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.num.number(l.wr.lastSeq + 1)
}

// Renumber numbers the record numbered fromSeq, and every record after it (stored or appended
// later), anew from toSeq: that record gets toSeq, and each one after it keeps its distance
// from it in the log (a record lost to damage in between leaves its number unused; one appended
// later is one more than the one before), whatever renumbering applied to them before.
// Arithmetic is modulo 2^64, and toSeq may be above or below fromSeq. Records before it keep
// their numbers. fromSeq must be the number of an untrimmed
// record or NextSeq(), and toSeq must be above the number of the untrimmed record before it, if
// any, so that numbers keep growing along the untrimmed records (Trim relies on it): otherwise
// the error wraps ErrSeqOrder. Renumber returns once the new numbering is in the meta file,
// durably; if it fails, nothing changed. Records Read handed out before keep the numbers they
// were read with: a consumer that renumbers Rewinds and reads them again.
//
// At most WithMaxSpans renumberings are kept at a time (each one whose records are all trimmed
// is forgotten when the meta file is next written); past that Renumber fails with
// ErrTooManySpans.
func (l *Log) Renumber(fromSeq, toSeq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	next := l.wr.lastSeq + 1
	at := next
	if fromSeq != l.num.number(next) {
		at = l.num.through(fromSeq, l.rd.trimmedSeq+1, next)
		if at <= l.rd.trimmedSeq || l.num.number(at) != fromSeq {
			return fmt.Errorf("%w: renumber from %d: no untrimmed record has that number (next %d)", ErrSeqOrder, fromSeq, l.num.number(next))
		}
	}
	found, prev, err := l.recordAtLocked(at)
	if err != nil {
		return err
	}
	if at != next && !found {
		return fmt.Errorf("%w: renumber from %d: no untrimmed record has that number", ErrSeqOrder, fromSeq)
	}
	if fromSeq == toSeq {
		return nil // numbered so already
	}
	if prev != 0 && toSeq <= l.num.number(prev) {
		return fmt.Errorf("%w: renumber from %d to %d: the record before it is numbered %d", ErrSeqOrder, fromSeq, toSeq, l.num.number(prev))
	}
	m := l.metaLocked(false)
	m.spans = pruneSpans(l.num.withSpan(at, toSeq), l.rd.trimmedSeq+1)
	if len(m.spans) > l.o.maxSpans {
		return fmt.Errorf("%w: %d needed, at most %d (WithMaxSpans); the oldest cover untrimmed records", ErrTooManySpans, len(m.spans), l.o.maxSpans)
	}
	if err := l.writeMetaLocked(m); err != nil {
		return err
	}
	l.log.Warn().Uint64("from", fromSeq).Uint64("to", toSeq).Uint64("log_seq", at).Msg("spill records renumbered")
	return nil
}

// recordAtLocked tells whether an untrimmed record has log number seq, and returns the log
// number of the untrimmed record before seq (0 if none).
func (l *Log) recordAtLocked(seq uint64) (found bool, prev uint64, err error) {
	d := l.wr.bufd
	if d.records > 0 && seq >= d.firstSeq {
		if seq <= d.lastSeq {
			found = true
		}
		if seq > d.firstSeq {
			return found, min(seq, d.lastSeq+1) - 1, nil
		}
	}
	for i := len(l.segs) - 1; i >= 0; i-- {
		seg := l.segs[i]
		if seg.records == seg.trimRecs || seg.firstSeq > seq {
			continue
		}
		if seg.lastSeq < seq {
			return found, seg.lastSeq, nil
		}
		// seq lies within seg: scan it from its trim point.
		end := seg.size
		if seg == l.wr.active {
			end = l.wr.written
		}
		r, err := l.readerLocked(seg)
		if err != nil {
			return false, 0, err
		}
		sc := newScanner(r, seg.trim, end, defaultWindow, false)
		sc.mem, sc.seg = &l.tail, seg
		for {
			f, _, _, ok := sc.next()
			if !ok || f.typ == typeRecord && f.seq >= seq {
				found = ok && f.seq == seq
				break
			}
			if f.typ == typeRecord {
				prev = f.seq
			}
		}
		if sc.err != nil {
			return false, 0, &WriteError{Op: "read", Path: seg.path, Err: sc.err}
		}
		if prev != 0 {
			return found, prev, nil
		}
		// The first untrimmed record of seg: the one before lies in an earlier segment.
		for j := i - 1; j >= 0; j-- {
			if s := l.segs[j]; s.records > s.trimRecs {
				return found, s.lastSeq, nil
			}
		}
		return found, 0, nil
	}
	return found, 0, nil
}

// UnsentFrom returns the unsent marker, and false if none is set. Open sets it to NextSeq() when
// the directory was not closed cleanly (a crash of the process or of the machine), or lowers it
// to that if it was set already. It says that no record numbered from it on has been handed out
// since: a crash of the machine may have cut the directory short of records the consumer had
// delivered, and their numbers are then given to new records, which the consumer must not take
// for delivered ones. It marks a record, not a number: Renumber moves it with the records.
func (l *Log) UnsentFrom() (seq uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.num.unsent == 0 {
		return 0, false
	}
	return l.num.number(l.num.unsent), true
}

// ClearUnsent removes the unsent marker, durably, before it returns; the consumer calls it
// before it sends a record numbered at or above the marker. If it fails the marker stays.
func (l *Log) ClearUnsent() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.num.unsent == 0 {
		return nil
	}
	m := l.metaLocked(false)
	m.unsent = 0
	return l.writeMetaLocked(m)
}
