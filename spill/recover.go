package spill

import (
	"errors"
	"io/fs"
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
	// from them (the source id from a segment header; the sequence moved past every number
	// seen by a whole lease; the trim point lost, so trimmed records may replay again).
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
	metaErr error // nil: meta valid; fs.ErrNotExist: absent
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

// maxSeq is the highest sequence number stored.
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
