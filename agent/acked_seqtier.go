package agent

// SeqTier: the acknowledged mode's record store over a spill directory, numbered densely.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/spill"
	"github.com/pharos-node/pharos-node/tier"
)

// NumberingFile is the file SeqTier keeps in the spill directory, beside the log's own files
// (`pharos-node spill inspect` lists it under "other files"). It is JSON:
//
//	{"version": 1, "source_id": "<the log's SourceID>",
//	 "tier": [[LogSeq, WireSeq], ...],      // SeqTier's spans, ordered by LogSeq
//	 "manager": [[FromSeq, Delta], ...],    // fsm's renumbering spans (fsm.NumberingStore)
//	 "unsent_from": N}                      // optional: fsm.UnsentMarker's number
//
// and is replaced atomically: written to NumberingFile+".tmp", fsynced, renamed, and the
// directory fsynced. A leftover .tmp is removed by the next spill.Open.
const NumberingFile = "acked-numbering.json"

// ErrNumbering is wrapped by every failure to read or write NumberingFile.
var ErrNumbering = errors.New("agent: acked numbering file")

// numberingVersion is the version of NumberingFile this package writes and reads.
const numberingVersion = 1

// tierSpan says: from the log sequence number LogSeq on (up to the next span), a record's
// SeqTier number is WireSeq + (log number - LogSeq).
type tierSpan struct {
	LogSeq, WireSeq uint64
}

// renumbering is a span of the manager's old renumbering, kept in NumberingFile by earlier versions:
// from the SeqTier number FromSeq on, wire = number - Delta.
type renumbering struct {
	FromSeq uint64
	Delta   uint64
}

type numberingDoc struct {
	Version  int         `json:"version"`
	SourceID string      `json:"source_id"`
	Tier     [][2]uint64 `json:"tier"`
	Manager  [][2]uint64 `json:"manager"`
	// UnsentFrom is the SeqTier number from which no record has been sent since a restart
	// after a crash, while no manager has sent one (fsm.UnsentMarker); absent otherwise.
	UnsentFrom *uint64 `json:"unsent_from,omitempty"`
}

// SeqTier adapts a *spill.Log to fsm.SeqLog, the acknowledged mode's store, with exact numbers
// across restarts: its sequence numbers (the ones the Brain sees) are dense from 0 for a new
// spill directory, one per record ever stored, in the order stored, across restarts and
// crashes of the process.
//
// Why a mapping. A spill directory numbers from 1, and after a crash its next number jumps
// ahead by up to its sequence lease (2^20 by default), so that a number is never given twice
// even when the OS loses the log's tail. The Brain (pharos_acked.erl) refuses a batch that
// starts above its NextSeq, so holes must be closed. SeqTier closes them where they appear,
// at Append: it keeps spans (log number -> SeqTier number) in NumberingFile, and a span that
// starts a new stretch of log numbers is saved before the record that needs it is appended,
// so every record on disk has its span on disk. At NewSeqTier the next number is the
// SeqTier number of the highest log number stored or trimmed, plus one. A crash that kills
// the process loses only records the log had not yet written to the OS (its write buffer);
// spill.Log.Read writes the buffer before returning buffered records, so those lost records
// were never sent, and their numbers are given again to the records stored next: nothing the
// Brain saw is renumbered. (An OS crash may lose records the Brain already acknowledged; the
// Brain's NextSeq is then ahead of SeqTier's numbers, and the manager renumbers on top, with
// its spans kept in the same file, as the fsm.NumberingStore this type implements. So that a
// manager restarted before it synchronised does not take the records stored meanwhile for
// ones the Brain has, a restart after a crash marks the next number as the first unsent one,
// as the fsm.UnsentMarker this type implements, until a manager sends it.)
//
// The alternative of changing spill to resume exactly after its last stored record was not
// taken: the lease protects numbers handed out by Reserve for records kept in RAM, which a
// dense resume would give again; SeqTier needs no change to the log's format or guarantees.
//
// A consequence callers may rely on (`pharos-node send --mode acked` does): the k-th record
// ever stored in a spill directory through SeqTier, counting from 0, has number k, so NextSeq
// is how many records the directory has ever stored, durably.
//
// SeqTier must be the log's only writer (its numbering reads the log's NextSeq before each
// Append). Only the connection manager's goroutine calls its methods, except NextSeq, Len,
// Bytes and SourceID, which are safe for concurrent use.
type SeqTier struct {
	log  *spill.Log
	path string
	zl   zerolog.Logger

	spans   []tierSpan // ordered by LogSeq; never empty
	manager []renumbering
	unsent  *uint64       // fsm.UnsentMarker's number; nil: none
	closed  atomic.Bool   // set before the log is closed: NumberingFile is not written again
	next    atomic.Uint64 // the SeqTier number of the next record stored
	buf     []spill.Record
	// logNext is the log's next number as this tier's last Append left it, 0 when unknown (before
	// the first Append, after a failed one): Append then asks the log, under its lock. The log
	// numbers consecutively what it stores and this tier is its only writer, so one Append
	// follows another with no need to ask (a lock round trip per record otherwise). A writer
	// breaking that contract (nothing in this module does: the log is locked to one process and
	// the agent stores through the tier) is now caught only after the tier's next Append stored
	// its record, and the span saved then; asking first caught it before storing.
	logNext uint64
}

var _ fsm.SeqLog = (*SeqTier)(nil)

// NewSeqTier reads NumberingFile from the log's directory (none: a new numbering, 0 for the
// log's first number) and works out the next number from what the log holds. The log stays
// the caller's to close. A NumberingFile that cannot be read, or that names another SourceID,
// is an error wrapping ErrNumbering: renumbering records the Brain may have seen under other
// numbers would break its deduplication, so the directory needs a look (or the file removed,
// accepting that).
func NewSeqTier(l *spill.Log, logger zerolog.Logger) (*SeqTier, error) {
	t := &SeqTier{log: l, path: filepath.Join(l.Dir(), NumberingFile), zl: logger}
	doc, err := readNumbering(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		t.spans = []tierSpan{{LogSeq: 1, WireSeq: 0}}
	case err != nil:
		return nil, err
	case doc.SourceID != l.SourceID():
		return nil, fmt.Errorf("%w: %s belongs to source %q, the spill directory is %q", ErrNumbering, t.path, doc.SourceID, l.SourceID())
	default:
		for _, s := range doc.Tier {
			t.spans = append(t.spans, tierSpan{LogSeq: s[0], WireSeq: s[1]})
		}
		for _, s := range doc.Manager {
			t.manager = append(t.manager, renumbering{FromSeq: s[0], Delta: s[1]})
		}
		t.unsent = doc.UnsentFrom
		if len(t.spans) == 0 || !slices.IsSortedFunc(t.spans, func(a, b tierSpan) int { return cmpU64(a.LogSeq, b.LogSeq) }) {
			return nil, fmt.Errorf("%w: %s: tier spans empty or out of order", ErrNumbering, t.path)
		}
	}
	last := l.Stats().LastSeq
	// Spans above the last number stored were saved for records that never reached the log.
	k := sort.Search(len(t.spans), func(i int) bool { return t.spans[i].LogSeq > last })
	switch {
	case k == 0:
		// Nothing stored under any span (a new directory): numbering starts at the first.
		t.spans = t.spans[:1]
		t.next.Store(t.spans[0].WireSeq)
	default:
		t.spans = t.spans[:k]
		t.next.Store(t.wire(last) + 1)
	}
	// The log's next number is past the last one stored or trimmed after a crash (its lease; or
	// after numbers a failed write took): the crash may have been an OS crash that lost records
	// the Brain had, whose numbers the next records get again. Mark them unsent, before any is
	// stored (kept if already lower). A needless marker costs one write of NumberingFile.
	if next := t.next.Load(); l.NextSeq() > last+1 && (t.unsent == nil || next < *t.unsent) {
		if err := t.save(t.spans, t.manager, &next); err != nil {
			return nil, err
		}
		t.unsent = &next
	}
	return t, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// wire is the SeqTier number of log number seq.
func (t *SeqTier) wire(seq uint64) uint64 {
	last := t.spans[len(t.spans)-1]
	if seq >= last.LogSeq {
		return last.WireSeq + (seq - last.LogSeq)
	}
	i := sort.Search(len(t.spans), func(i int) bool { return t.spans[i].LogSeq > seq }) - 1
	if i < 0 {
		i = 0 // below every span: not a number this tier gave
	}
	return t.spans[i].WireSeq + (seq - t.spans[i].LogSeq)
}

// logSeq is the log number of SeqTier number w, and false if w is below every span.
func (t *SeqTier) logSeq(w uint64) (uint64, bool) {
	// The last span whose WireSeq <= w; of spans with the same WireSeq the later one (an
	// earlier one then covers no stored record).
	i := sort.Search(len(t.spans), func(i int) bool { return t.spans[i].WireSeq > w }) - 1
	if i < 0 {
		return 0, false
	}
	return t.spans[i].LogSeq + (w - t.spans[i].WireSeq), true
}

// SourceID implements fsm.SeqLog: the spill directory's, the same across restarts.
func (t *SeqTier) SourceID() string { return t.log.SourceID() }

// NextSeq is the number the next stored record gets: how many records the directory has
// stored through SeqTier, ever. Safe for concurrent use.
func (t *SeqTier) NextSeq() uint64 { return t.next.Load() }

// Append implements fsm.SeqLog. When the log's next number starts a new stretch (the first
// Append after a crash), the span is saved first; if saving fails, nothing is stored and the
// error wraps ErrNumbering.
func (t *SeqTier) Append(rec []byte) (uint64, error) {
	want := t.next.Load()
	s := t.logNext
	if s == 0 {
		s = t.log.NextSeq()
	}
	if t.wire(s) != want {
		if err := t.addSpan(s, want); err != nil {
			return 0, err
		}
	}
	seq, err := t.log.Append(rec)
	t.logNext = 0
	if err != nil {
		if seq == 0 || t.log.Stats().LastSeq < seq {
			return 0, err // not stored
		}
		// Stored though the error says otherwise: under spill.SyncAlways a failed fsync
		// leaves the record written (spill.Log.Append's one exception). Read will hand it out
		// and the manager send it, so it keeps its number; reporting it as not stored would
		// give its number to the next record too.
		t.zl.Warn().Err(err).Uint64("log_seq", seq).Msg("acked numbering: record stored but not known durable")
	}
	if t.wire(seq) != want {
		// Someone else appended in between: the contract was broken; keep the numbering
		// dense anyway (a crash before this save would leave the record misnumbered).
		if err := t.addSpan(seq, want); err != nil {
			t.zl.Error().Err(err).Uint64("log_seq", seq).Msg("acked numbering: another writer appended to the spill log")
		}
	}
	t.next.Store(want + 1)
	t.logNext = seq + 1
	return want, nil
}

// addSpan saves a span from log number seq to SeqTier number w, replacing spans at or above
// seq and dropping those wholly below the oldest untrimmed record.
func (t *SeqTier) addSpan(seq, w uint64) error {
	k := sort.Search(len(t.spans), func(i int) bool { return t.spans[i].LogSeq >= seq })
	spans := append(slices.Clone(t.spans[:k]), tierSpan{LogSeq: seq, WireSeq: w})
	// Keep the last span at or below the oldest untrimmed record, and every later one.
	oldest := t.log.Stats().TrimmedSeq + 1
	drop := sort.Search(len(spans), func(i int) bool { return spans[i].LogSeq > oldest }) - 1
	if drop > 0 {
		spans = spans[drop:]
	}
	if err := t.save(spans, t.manager, t.unsent); err != nil {
		return err
	}
	t.zl.Info().Uint64("log_seq", seq).Uint64("seq", w).Msg("acked numbering: spill numbers jump (a restart after a crash); numbering stays dense")
	t.spans = spans
	return nil
}

// Read implements fsm.SeqLog.
//
// A record below the first span is not handed out: addSpan dropped its span because the log's
// trim point had passed it, so it was acknowledged, and it is back only because that trim point
// had not reached the disk before a crash (the log writes it lazily) or the log rebuilt its meta
// file. Its SeqTier number is no longer known (numbering it from the first span would wrap
// around), so it is trimmed again instead.
func (t *SeqTier) Read(dst []tier.Record, max int) ([]tier.Record, error) {
	first := t.spans[0].LogSeq
	for {
		var err error
		t.buf, err = t.log.Read(t.buf[:0], max)
		before, acked := len(dst), uint64(0)
		for _, r := range t.buf {
			if r.Seq < first {
				acked = r.Seq
				continue
			}
			dst = append(dst, tier.Record{Seq: t.wire(r.Seq), Data: r.Data})
		}
		clear(t.buf)
		if acked > 0 {
			if terr := t.log.Trim(acked); terr != nil && err == nil {
				err = terr
			}
			t.zl.Warn().Uint64("log_seq", acked).Msg("acked numbering: records acknowledged before a crash came back from the spill log; trimmed again")
		}
		// Read on only when every record read was such a one: an empty answer means the end.
		if err != nil || acked == 0 || len(dst) > before {
			return dst, err
		}
	}
}

// Rewind implements fsm.SeqLog.
func (t *SeqTier) Rewind() { t.log.Rewind() }

// Trim implements fsm.SeqLog: it trims the log through the record numbered throughSeq.
func (t *SeqTier) Trim(throughSeq uint64) error {
	seq, ok := t.logSeq(throughSeq)
	if !ok {
		return nil
	}
	return t.log.Trim(seq)
}

// Len implements fsm.SeqLog. Safe for concurrent use.
func (t *SeqTier) Len() int { return t.log.Len() }

// Bytes implements fsm.SeqLog. Safe for concurrent use.
func (t *SeqTier) Bytes() int64 { return t.log.Bytes() }

// Renumber implements fsm.SeqLog: from the record numbered fromSeq on, numbers go on from toSeq.
// The span is saved to NumberingFile before it returns. The marker moves with the records.
func (t *SeqTier) Renumber(fromSeq, toSeq uint64) error {
	seq, ok := t.logSeq(fromSeq)
	if !ok {
		return fmt.Errorf("%w: renumber from %d: below every span", ErrNumbering, fromSeq)
	}
	if fromSeq == t.next.Load() {
		seq = t.log.NextSeq()
	}
	k := sort.Search(len(t.spans), func(i int) bool { return t.spans[i].LogSeq >= seq })
	spans := append(slices.Clone(t.spans[:k]), tierSpan{LogSeq: seq, WireSeq: toSeq})
	unsent := t.unsent
	if unsent != nil && *unsent >= fromSeq {
		u := *unsent + (toSeq - fromSeq)
		unsent = &u
	}
	if err := t.save(spans, t.manager, unsent); err != nil {
		return err
	}
	t.spans, t.unsent = spans, unsent
	t.next.Store(t.next.Load() + (toSeq - fromSeq))
	return nil
}

// UnsentFrom implements fsm.SeqLog.
func (t *SeqTier) UnsentFrom() (uint64, bool) {
	if t.unsent == nil {
		return 0, false
	}
	return *t.unsent, true
}

// ClearUnsent implements fsm.SeqLog: the marker is gone from NumberingFile, durably,
// before it returns.
func (t *SeqTier) ClearUnsent() error {
	if t.unsent == nil {
		return nil
	}
	if err := t.save(t.spans, t.manager, nil); err != nil {
		return err
	}
	t.unsent = nil
	return nil
}

// closeNumbering stops every later write of NumberingFile, before the agent closes the log: a
// killed manager still inside a handler (Agent.Close gave up waiting for it) must not write it
// once the directory is another process's to open.
func (t *SeqTier) closeNumbering() { t.closed.Store(true) }

func (t *SeqTier) save(tierSpans []tierSpan, manager []renumbering, unsent *uint64) error {
	if t.closed.Load() {
		return fmt.Errorf("%w: the spill directory is closed", ErrNumbering)
	}
	doc := numberingDoc{Version: numberingVersion, SourceID: t.log.SourceID(), Tier: [][2]uint64{}, Manager: [][2]uint64{}, UnsentFrom: unsent}
	for _, s := range tierSpans {
		doc.Tier = append(doc.Tier, [2]uint64{s.LogSeq, s.WireSeq})
	}
	for _, s := range manager {
		doc.Manager = append(doc.Manager, [2]uint64{s.FromSeq, s.Delta})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNumbering, err)
	}
	if err := writeFileAtomic(t.path, append(b, '\n')); err != nil {
		return fmt.Errorf("%w: %w", ErrNumbering, err)
	}
	return nil
}

func readNumbering(path string) (numberingDoc, error) {
	var doc numberingDoc
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return doc, err
		}
		return doc, fmt.Errorf("%w: %w", ErrNumbering, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("%w: %s: %w", ErrNumbering, path, err)
	}
	if doc.Version != numberingVersion {
		return doc, fmt.Errorf("%w: %s: version %d, want %d", ErrNumbering, path, doc.Version, numberingVersion)
	}
	return doc, nil
}

// writeFileAtomic replaces path with data: path.tmp written and fsynced, renamed over path, the
// directory fsynced. On error the temporary file is removed.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
