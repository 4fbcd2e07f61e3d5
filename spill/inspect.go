package spill

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
)

// Report is what Inspect found in a spill directory.
//
// Its numbers are record numbers, as Open would give them: a version-1 directory numbered as its
// conversion will number it; a directory whose meta file is missing or invalid as if it had
// never been renumbered.
type Report struct {
	Dir      string
	SourceID string
	Version  int    // of the meta file, 0 if it is missing or invalid (version 1: Open converts it)
	Clean    bool   // the last Log on it was closed cleanly (version 2)
	NextSeq  uint64 // the number the next Append will give
	// UntrimmedFrom: every record numbered below it is trimmed.
	UntrimmedFrom uint64
	UnsentFrom    uint64 // the unsent marker (see Log.UnsentFrom), if HasUnsent
	HasUnsent     bool
	Spans         int   // renumberings kept (1: never renumbered)
	MetaErr       error // nil, or why the meta file is missing or invalid
	Segments      []SegmentReport

	Records     int    // untrimmed records, ready to replay
	Bytes       int64  // their payload bytes
	FirstSeq    uint64 // the number of the oldest untrimmed record, if Records > 0
	LastSeq     uint64 // the number of the newest record, if any
	DiskBytes   int64  // size of the segment files
	LostRecords uint64 // records lost to the damage below
	LostBytes   uint64
	TornBytes   int64 // damaged bytes at the end of the last segment
	Damage      []Damage

	Stale   []string // fully trimmed or empty segments left by an interrupted trim or rotation
	Foreign []string // segment files whose records go back in order
	Stray   []string // leftover *.tmp files
	Broken  []string // *.broken copies kept by earlier repairs
	Other   []string // files that are not part of the format
}

// SegmentReport describes one segment file.
type SegmentReport struct {
	Name      string
	Index     uint64
	Size      int64
	Records   int // valid records
	Trimmed   int // of which trimmed
	Bytes     int64
	FirstSeq  uint64 // the numbers of its first and last record, if Records > 0
	LastSeq   uint64
	SourceID  string
	HeaderErr error
	Damaged   int // damaged regions
}

// Intact reports whether the directory has no damage: a valid meta file (or none at all in an
// empty directory), no damaged region, no foreign segment.
func (r *Report) Intact() bool {
	metaOK := r.MetaErr == nil || (errors.Is(r.MetaErr, fs.ErrNotExist) && len(r.Segments) == 0)
	return metaOK && len(r.Damage) == 0 && len(r.Foreign) == 0
}

// Err returns nil for an intact directory, else the first problem: a *CorruptionError for
// damage, or an error wrapping ErrBadMeta.
func (r *Report) Err() error {
	if r.Intact() {
		return nil
	}
	if len(r.Damage) > 0 {
		ce := r.Damage[0].CorruptionError
		return &ce
	}
	if len(r.Foreign) > 0 {
		return &CorruptionError{Segment: r.Foreign[0], Err: ErrOrder}
	}
	if errors.Is(r.MetaErr, fs.ErrNotExist) {
		return fmt.Errorf("%w: missing", ErrBadMeta)
	}
	return r.MetaErr
}

// Inspect reads a spill directory and reports what it holds and what is damaged. It changes
// nothing and takes no lock, so it may run beside a live Log (whose last segment may then show
// a partly written tail). Options: WithFS.
func Inspect(dir string, opts ...Option) (*Report, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	ds, err := scanDir(o.fs, dir)
	if err != nil {
		return nil, fmt.Errorf("spill: inspect %s: %w", dir, err)
	}
	return ds.report(o.fs), nil
}

// Verify is Inspect followed by Report.Err: nil if the directory is intact.
func Verify(dir string, opts ...Option) (*Report, error) {
	r, err := Inspect(dir, opts...)
	if err != nil {
		return nil, err
	}
	return r, r.Err()
}

// report describes the scanned directory, numbering it as Open would (reading a version-1
// directory's numbering file, ignored if invalid, from fsys).
func (ds *dirScan) report(fsys FS) *Report {
	r := &Report{
		Dir: ds.dir, MetaErr: ds.metaErr, Damage: ds.damage(),
		LostRecords: ds.lostRecords, LostBytes: ds.lostBytes, TornBytes: ds.tornBytes,
		Stray: ds.stray, Broken: ds.broken, Other: ds.other,
	}
	m := ds.meta
	if ds.metaErr == nil {
		r.Version, r.Clean = m.version, m.clean
	} else {
		m = meta{version: 1, sourceID: ds.sourceID(), v1NextSeq: math.MaxUint64}
	}
	r.SourceID = m.sourceID
	if m.version == 1 {
		doc, _ := readNumberingFile(fsys, ds.dir)
		folded, err := foldV1(m, ds.maxSeq(), doc)
		if err != nil {
			folded, _ = foldV1(m, ds.maxSeq(), nil)
		}
		folded.clean = r.Clean
		m = folded
	}
	var num numbering
	num.setSpans(m.spans)
	next := max(ds.maxSeq(), m.trimmedSeq) + 1
	r.NextSeq, r.UntrimmedFrom, r.Spans = num.number(next), num.number(m.trimmedSeq+1), len(m.spans)
	if m.unsent != 0 {
		r.UnsentFrom, r.HasUnsent = num.number(m.unsent), true
	}
	for _, seg := range ds.stale {
		r.Stale = append(r.Stale, seg.name)
	}
	for _, seg := range ds.foreign {
		r.Foreign = append(r.Foreign, seg.name)
	}
	for _, seg := range ds.segs {
		r.Segments = append(r.Segments, SegmentReport{
			Name: seg.name, Index: seg.index, Size: seg.size, Records: seg.records, Trimmed: seg.trimRecs,
			Bytes: seg.bytes, FirstSeq: num.number(seg.firstSeq), LastSeq: num.number(seg.lastSeq), SourceID: seg.sourceID,
			HeaderErr: seg.hdrErr, Damaged: len(seg.damage),
		})
		n, b := seg.pending()
		if n > 0 && r.Records == 0 {
			r.FirstSeq = num.number(seg.pendSeq)
		}
		if seg.records > 0 {
			r.LastSeq = num.number(seg.lastSeq)
		}
		r.Records += n
		r.Bytes += b
		r.DiskBytes += seg.size
	}
	return r
}
