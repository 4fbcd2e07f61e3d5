package spill

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Recovery is what Open found in the directory: what is there and what was lost.
type Recovery struct {
	Segments    int    // segment files in use
	Records     int    // untrimmed records found, oldest first ready to replay
	Bytes       int64  // their payload bytes
	LostRecords uint64 // records known to have been stored and now gone (damage)
	LostBytes   uint64 // their payload bytes
	TornBytes   int64  // bytes cut from the end of the last segment (a torn write)
	Damage      []Damage
	// MetaRebuilt: the meta file was missing or invalid with segments present, and was rebuilt
	// from them (the source id from a segment header; the trim point lost, so trimmed records
	// may replay again; the numbering as if never renumbered; the unsent marker set).
	MetaRebuilt bool
	MetaErr     error
	// StaleSegments: segments left over from a trim or a rotation interrupted by a crash (wholly
	// trimmed, or empty), removed.
	StaleSegments int
	// Foreign: segment files whose records go back in order, ignored and left in place.
	Foreign []string
}

// dirScan is a scan of a whole spill directory.
type dirScan struct {
	dir     string
	meta    meta
	metaRaw []byte // the meta file's bytes, if it was read
	metaErr error  // nil: meta valid; fs.ErrNotExist: absent
	segs    []*segment
	stale   []*segment
	foreign []*segment
	stray   []string // *.tmp files
	broken  []string // *.broken files
	other   []string

	endOrd, endPos uint64 // expected next frame after the last segment
	lostRecords    uint64
	lostBytes      uint64
	tornBytes      int64
}

// scanDir reads the meta file and every segment, validates every frame, and works out what was
// lost. It changes nothing.
func scanDir(fsys FS, dir string) (*dirScan, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	ds := &dirScan{dir: dir}
	if b, err := readWhole(fsys, filepath.Join(dir, metaName)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			ds.metaErr = fs.ErrNotExist
		} else {
			return nil, err
		}
	} else {
		ds.metaRaw = b
		ds.meta, ds.metaErr = decodeMeta(b)
	}
	var trimmedSeq uint64
	if ds.metaErr == nil {
		trimmedSeq = ds.meta.trimmedSeq
	}
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, tmpExt):
			ds.stray = append(ds.stray, name)
			continue
		case strings.HasSuffix(name, brokenExt):
			ds.broken = append(ds.broken, name)
			continue
		case name == metaName || name == lockName:
			continue
		}
		index, ok := parseSegmentName(name)
		if !ok {
			ds.other = append(ds.other, name)
			continue
		}
		seg, err := scanSegment(fsys, dir, name, index, trimmedSeq)
		if err != nil {
			return nil, err
		}
		if seg.size == 0 {
			// Created by a rotation that a crash interrupted before its header was
			// written: nothing in it, nothing lost.
			ds.stale = append(ds.stale, seg)
			continue
		}
		ds.segs = append(ds.segs, seg)
	}
	slices.SortFunc(ds.segs, func(a, b *segment) int {
		switch {
		case a.index < b.index:
			return -1
		case a.index > b.index:
			return 1
		}
		return 0
	})
	ds.stitch()
	return ds, nil
}

// stitch follows the record numbers from the meta file's head through every segment: segments
// wholly before the head are stale, a segment that goes back is foreign, and a jump forward
// between segments is a loss, charged to the damaged tail before it, else to damage at the start
// of the segment after it, else to a new ErrMissingRecords entry.
func (ds *dirScan) stitch() {
	haveExp := ds.metaErr == nil
	expOrd, expPos := ds.meta.headOrd, ds.meta.headPos
	trimmedSeq := ds.meta.trimmedSeq
	if !haveExp {
		trimmedSeq = 0
	}
	var kept []*segment
	var prev *segment
	for _, seg := range ds.segs {
		if !seg.hasFrames {
			seg.endOrd, seg.endPos = expOrd, expPos
			kept = append(kept, seg)
			continue
		}
		if haveExp && seg.endOrd <= expOrd && seg.endPos <= expPos && len(kept) == 0 {
			ds.stale = append(ds.stale, seg)
			continue
		}
		if haveExp && (seg.firstOrd < expOrd || seg.firstPos < expPos) {
			ds.foreign = append(ds.foreign, seg)
			continue
		}
		if haveExp && (seg.firstOrd > expOrd || seg.firstPos > expPos) {
			lost := gap{seg.firstOrd - expOrd, seg.firstPos - expPos}
			if seg.records > 0 && seg.firstSeq <= trimmedSeq {
				lost = gap{} // every missing record was older than a trimmed one
			}
			switch {
			case prev != nil && len(prev.damage) > 0 && prev.damage[len(prev.damage)-1].Tail:
				d := &prev.damage[len(prev.damage)-1]
				d.LostRecords, d.LostBytes = lost.records, lost.bytes
				d.Tail = false
			case len(seg.damage) > 0 && seg.damage[0].Offset <= seg.firstOff && seg.damage[0].Offset >= segmentHeaderSize:
				seg.damage[0].LostRecords += lost.records
				seg.damage[0].LostBytes += lost.bytes
			default:
				d := Damage{CorruptionError: CorruptionError{Segment: seg.name, Offset: seg.firstOff, Err: ErrMissingRecords}}
				d.LostRecords, d.LostBytes = lost.records, lost.bytes
				seg.damage = append(seg.damage, Damage{})
				copy(seg.damage[1:], seg.damage)
				seg.damage[0] = d
			}
		}
		haveExp = true
		expOrd, expPos = seg.endOrd, seg.endPos
		kept = append(kept, seg)
		prev = seg
	}
	// A damaged tail is torn only at the end of the last segment; elsewhere the jump to the next
	// segment already counted its loss.
	for i, seg := range kept {
		for j := range seg.damage {
			d := &seg.damage[j]
			if !d.Tail {
				continue
			}
			if i == len(kept)-1 {
				d.LostRecords, d.LostBytes = seg.tailWalk.records, seg.tailWalk.bytes
				ds.tornBytes += d.Length
			} else {
				d.Tail = false
			}
		}
	}
	for _, seg := range kept {
		for _, d := range seg.damage {
			ds.lostRecords += d.LostRecords
			ds.lostBytes += d.LostBytes
		}
	}
	ds.segs = kept
	ds.endOrd, ds.endPos = expOrd, expPos
}

// damage returns every damaged region, in file order.
func (ds *dirScan) damage() []Damage {
	var out []Damage
	for _, seg := range ds.segs {
		out = append(out, seg.damage...)
	}
	for _, seg := range ds.foreign {
		out = append(out, Damage{CorruptionError: CorruptionError{Segment: seg.name, Offset: seg.firstOff, Err: ErrOrder}, Length: seg.size})
	}
	return out
}

// maxSeq is the highest log number stored.
func (ds *dirScan) maxSeq() uint64 {
	var m uint64
	for _, seg := range ds.segs {
		m = max(m, seg.lastSeq)
	}
	return m
}

// maxIndex is the highest index of a segment file in the directory, live, stale or foreign (a
// stale one stays if it cannot be removed, a foreign one is left in place), 0 if none.
func (ds *dirScan) maxIndex() uint64 {
	var m uint64
	for _, segs := range [][]*segment{ds.segs, ds.stale, ds.foreign} {
		for _, seg := range segs {
			m = max(m, seg.index)
		}
	}
	return m
}

// sourceID returns the source id of the first segment header that has one.
func (ds *dirScan) sourceID() string {
	for _, seg := range ds.segs {
		if seg.hdrErr == nil && seg.sourceID != "" {
			return seg.sourceID
		}
	}
	return ""
}

// recover scans the directory and sets the Log up from what it found; it converts a version-1
// directory, and records durably that the directory is open (see UnsentFrom).
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
	metaErr := ds.metaErr
	m := ds.meta
	rebuilt := false
	switch {
	case metaErr == nil && m.version == metaVersion:
		if slices.Contains(ds.other, numberingFile) {
			// Left by a conversion a crash interrupted after the meta file was written.
			if err := l.fs.Remove(filepath.Join(l.dir, numberingFile)); err != nil {
				l.log.Warn().Err(err).Msg("cannot remove the converted " + numberingFile)
			}
		}
	case errors.Is(metaErr, fs.ErrNotExist) && len(ds.segs) == 0 && len(ds.foreign) == 0:
		id := l.o.sourceID
		if id == "" {
			if id, err = newSourceID(l.o.rand); err != nil {
				return err
			}
		}
		// New: nothing was ever handed out, so nothing needs the unsent marker.
		m = meta{version: metaVersion, sourceID: id, clean: true, spans: []seqSpan{{from: 1, num: 0}}}
	default:
		// Version 1, or missing or invalid with segments present: convert or rebuild.
		rebuilt = metaErr != nil
		if rebuilt {
			if m, err = l.rebuiltMeta(ds); err != nil {
				return err
			}
		}
		if _, err := convertDir(l.fs, l.dir, ds, m, rebuilt); err != nil {
			return fmt.Errorf("spill: convert %s: %w", l.dir, err)
		}
		if !rebuilt {
			l.log.Info().Str("source_id", m.sourceID).Msg("spill directory converted to meta version 2")
		}
		// Scan again: the trim point may have moved (records SeqTier took for acknowledged).
		if ds, err = scanDir(l.fs, l.dir); err != nil {
			return fmt.Errorf("spill: scan %s: %w", l.dir, err)
		}
		if ds.metaErr != nil {
			return fmt.Errorf("spill: convert %s: %w", l.dir, ds.metaErr)
		}
		m = ds.meta
	}
	rec := Recovery{
		LostRecords: ds.lostRecords, LostBytes: ds.lostBytes, TornBytes: ds.tornBytes,
		Damage: ds.damage(), StaleSegments: len(ds.stale),
		MetaRebuilt: rebuilt,
	}
	if rebuilt {
		rec.MetaErr = metaErr
	}
	for _, seg := range ds.foreign {
		rec.Foreign = append(rec.Foreign, seg.name)
	}
	for _, seg := range ds.stale {
		if err := l.fs.Remove(seg.path); err != nil {
			l.log.Warn().Err(err).Str("segment", seg.name).Msg("cannot remove stale segment")
		}
	}
	l.sourceID = m.sourceID
	l.rd.trimmedSeq = m.trimmedSeq
	l.meta.persistedTrim, l.meta.headOrd, l.meta.headPos = m.trimmedSeq, m.headOrd, m.headPos
	l.wr.nextOrd, l.wr.nextPos = ds.endOrd, ds.endPos
	// Numbering resumes after the highest log number stored or trimmed: numbers lost with a
	// crash were never handed out by Read (it writes the buffer first), unless the machine
	// crashed, which the unsent marker is for.
	l.wr.lastSeq = max(ds.maxSeq(), m.trimmedSeq)
	next := l.wr.lastSeq + 1
	l.num.setSpans(dropSpansAbove(m.spans, next))
	l.num.unsent = m.unsent
	if !m.clean && (l.num.unsent == 0 || next < l.num.unsent) {
		l.num.unsent = next
	}
	// Durably "open" before anything is appended: a crash from now on is an unclean close.
	if open := l.metaLocked(false); !bytes.Equal(encodeMeta(open), ds.metaRaw) {
		if err := l.writeMetaLocked(open); err != nil {
			return fmt.Errorf("spill: meta file of %s: %w", l.dir, err)
		}
	}
	l.segs = ds.segs
	l.wr.lastIndex = ds.maxIndex()
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
	l.rd.cur = cursor{}
	l.fixCursorLocked()
	ev := l.log.Info()
	if rec.LostRecords > 0 || rec.TornBytes > 0 || len(rec.Damage) > 0 {
		ev = l.log.Warn()
	}
	if rec.MetaRebuilt {
		l.log.Warn().Err(metaErr).Str("source_id", m.sourceID).Msg("meta file rebuilt from the segments")
	}
	ev.Int("segments", rec.Segments).Int("records", rec.Records).Uint64("lost_records", rec.LostRecords).
		Uint64("lost_bytes", rec.LostBytes).Int64("torn_bytes", rec.TornBytes).Int("damaged_regions", len(rec.Damage)).
		Str("source_id", l.sourceID).Uint64("next_seq", l.num.number(next)).Bool("clean", m.clean).Msg("spill opened")
	return nil
}

// rebuiltMeta is the meta file of a directory whose meta file is missing or invalid while
// segments are present, as version 1 would have it after a crash (convertDir then numbers it):
// the source id from a segment header, the head at the first frame, the trim point lost (trimmed
// records may replay once more).
func rebuiltMeta(ds *dirScan, o *options) (meta, error) {
	m := meta{version: 1, sourceID: ds.sourceID(), v1NextSeq: math.MaxUint64}
	if m.sourceID == "" {
		m.sourceID = o.sourceID
	}
	if m.sourceID == "" {
		var err error
		if m.sourceID, err = newSourceID(o.rand); err != nil {
			return m, err
		}
	}
	if len(ds.segs) > 0 {
		m.headOrd, m.headPos = ds.segs[0].firstOrd, ds.segs[0].firstPos
	}
	return m, nil
}

// rebuiltMeta is rebuiltMeta for Open, which keeps the invalid file as meta.broken.
func (l *Log) rebuiltMeta(ds *dirScan) (meta, error) {
	m, err := rebuiltMeta(ds, &l.o)
	if err != nil {
		return m, err
	}
	if !errors.Is(ds.metaErr, fs.ErrNotExist) {
		metaPath := filepath.Join(l.dir, metaName)
		to, err := brokenName(l.fs, l.dir, metaName)
		if err == nil {
			err = l.fs.Rename(metaPath, filepath.Join(l.dir, to))
		}
		if err != nil {
			l.log.Warn().Err(err).Msg("cannot keep the invalid meta file")
		}
	}
	return m, nil
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
	w := &l.wr
	w.active, w.f, w.written = seg, f, seg.size
	w.bufd = bufInfo{startOrd: w.nextOrd, startPos: w.nextPos, prevSeq: w.lastSeq}
	return nil
}
