package spill

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"sort"
)

// Conversion of a version-1 directory (docs/spill-format.md, "Version 1"). Its log numbers were
// handed out a lease at a time, so they jump after a crash; agent.SeqTier (removed) mapped them
// to dense numbers in numberingFile, with the acknowledged connection manager's renumbering
// spans and its unsent marker. Open folds all of it into a version-2 meta file, so that every
// untrimmed record keeps the number SeqTier and the manager gave it.

// numberingFile is the file agent.SeqTier kept in a version-1 directory.
const numberingFile = "acked-numbering.json"

// numberingDoc is numberingFile's content.
type numberingDoc struct {
	Version  int         `json:"version"`
	SourceID string      `json:"source_id"`
	Tier     [][2]uint64 `json:"tier"`    // [log number, SeqTier number], ordered by log number
	Manager  [][2]uint64 `json:"manager"` // [FromSeq, Delta] on SeqTier numbers, ordered
	// UnsentFrom is a SeqTier number: no record numbered from it on was sent since a restart.
	UnsentFrom *uint64 `json:"unsent_from,omitempty"`
}

// readNumberingFile reads numberingFile from dir: nil if there is none.
func readNumberingFile(fsys FS, dir string) (*numberingDoc, error) {
	path := filepath.Join(dir, numberingFile)
	b, err := readWhole(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNumberingFile, path, err)
	}
	var doc numberingDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNumberingFile, path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("%w: %s: version %d, want 1", ErrNumberingFile, path, doc.Version)
	}
	return &doc, nil
}

// foldV1 returns the version-2 meta of a version-1 directory whose meta is m (version 1, or
// rebuilt from the segments: then m.v1NextSeq is past every number) and whose highest stored
// log number is maxSeq, numbering every untrimmed record as SeqTier and the manager's spans in
// doc did (no doc: SeqTier's numbering of a directory without its file, log number - 1):
//
//   - SeqTier's spans (L, W): log number l has SeqTier number W + (l - L), of the last span
//     with L <= l. At its start SeqTier dropped the spans past the highest number stored or
//     trimmed (last), keeping the first, and trimmed every record below the first span
//     (acknowledged, come back after a crash): its next number was t(last)+1, or the first
//     span's W if no record lay under any span.
//   - The manager's spans (F, D): SeqTier number t has wire number t - D, of the last span with
//     F <= t (none: t).
//   - The marker: SeqTier's unsent_from, a SeqTier number, is the record at that number; a
//     restart after a crash (the version-1 meta's next seq past last+1) lowered it to the next
//     number, as Open does for a directory not closed cleanly (m.clean is false then).
func foldV1(m meta, maxSeq uint64, doc *numberingDoc) (meta, error) {
	last := max(maxSeq, m.trimmedSeq)
	tier := []seqSpan{{from: 1, num: 0}}
	var mgr []seqSpan // from = F, num = D
	if doc != nil {
		if doc.SourceID != m.sourceID {
			return meta{}, fmt.Errorf("%w: it belongs to source %q, the directory is %q", ErrNumberingFile, doc.SourceID, m.sourceID)
		}
		tier = tier[:0]
		for _, s := range doc.Tier {
			tier = append(tier, seqSpan{from: s[0], num: s[1]})
		}
		for _, s := range doc.Manager {
			mgr = append(mgr, seqSpan{from: s[0], num: s[1]})
		}
		byFrom := func(a, b seqSpan) int { return cmpU64(a.from, b.from) }
		if len(tier) == 0 || !slices.IsSortedFunc(tier, byFrom) || !slices.IsSortedFunc(mgr, byFrom) {
			return meta{}, fmt.Errorf("%w: spans empty or out of order", ErrNumberingFile)
		}
	}
	k := sort.Search(len(tier), func(i int) bool { return tier[i].from > last })
	tier = tier[:max(k, 1)]
	out := meta{
		version: metaVersion, sourceID: m.sourceID, headOrd: m.headOrd, headPos: m.headPos,
		clean:      m.v1NextSeq <= last+1,
		trimmedSeq: m.trimmedSeq,
	}
	if tier[0].from > 0 {
		out.trimmedSeq = max(out.trimmedSeq, tier[0].from-1)
	}
	delta := func(t uint64) uint64 { // the manager's Delta at SeqTier number t
		i := sort.Search(len(mgr), func(i int) bool { return mgr[i].from > t }) - 1
		if i < 0 {
			return 0
		}
		return mgr[i].num
	}
	u := out.trimmedSeq + 1 // the oldest untrimmed log number
	for i, ts := range tier {
		end := uint64(math.MaxUint64) // exclusive; the last span has none
		if i+1 < len(tier) {
			end = tier[i+1].from
		}
		a := max(ts.from, u)
		if a >= end {
			continue
		}
		ta := ts.num + (a - ts.from)
		out.spans = append(out.spans, seqSpan{from: a, num: ta - delta(ta)})
		for _, ms := range mgr { // where a manager span starts within [a, end)
			if ms.from <= ta {
				continue
			}
			off := ms.from - ta
			if off >= end-a {
				break
			}
			out.spans = append(out.spans, seqSpan{from: a + off, num: ms.from - ms.num})
		}
	}
	out.spans = mergeSpans(out.spans)
	if doc != nil && doc.UnsentFrom != nil {
		out.unsent = u
		// SeqTier's logSeq: the last span whose W <= the number.
		if i := sort.Search(len(tier), func(i int) bool { return tier[i].num > *doc.UnsentFrom }) - 1; i >= 0 {
			out.unsent = max(tier[i].from+(*doc.UnsentFrom-tier[i].num), 1)
		}
	}
	if len(out.spans) > maxMetaSpans {
		return meta{}, fmt.Errorf("%w: %d spans, at most %d", ErrNumberingFile, len(out.spans), maxMetaSpans)
	}
	return out, nil
}

// mergeSpans drops the spans that continue the numbering of the span before them, and of spans
// with the same start keeps the last.
func mergeSpans(spans []seqSpan) []seqSpan {
	var out []seqSpan
	for _, s := range spans {
		if n := len(out); n > 0 {
			p := out[n-1]
			if p.from == s.from {
				out[n-1] = s
				continue
			}
			if p.num+(s.from-p.from) == s.num {
				continue
			}
		}
		out = append(out, s)
	}
	return out
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

// convertDir turns the version-1 (or rebuilt) meta m of the scanned directory into version 2 on
// disk: the old meta file kept as meta.broken (rebuilt: renamed there by the caller already),
// the new one written atomically, then numberingFile removed, and the directory fsynced.
func convertDir(fsys FS, dir string, ds *dirScan, m meta, rebuilt bool) (meta, error) {
	doc, err := readNumberingFile(fsys, dir)
	if err != nil {
		return meta{}, err
	}
	out, err := foldV1(m, ds.maxSeq(), doc)
	if err != nil {
		return meta{}, err
	}
	metaPath := filepath.Join(dir, metaName)
	if !rebuilt {
		to, err := brokenName(fsys, dir, metaName)
		if err != nil {
			return meta{}, err
		}
		if err := writeAtomic(fsys, dir, filepath.Join(dir, to), ds.metaRaw); err != nil {
			return meta{}, err
		}
	}
	if err := writeAtomic(fsys, dir, metaPath, encodeMeta(out)); err != nil {
		return meta{}, err
	}
	if doc != nil {
		if err := fsys.Remove(filepath.Join(dir, numberingFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return meta{}, writeErr("remove", numberingFile, err)
		}
		if err := fsys.SyncDir(dir); err != nil {
			return meta{}, writeErr("sync", dir, err)
		}
	}
	out.version = metaVersion
	return out, nil
}
