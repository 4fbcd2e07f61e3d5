package spill

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// File names in a spill directory (docs/spill-format.md, "Files").
const (
	segmentExt = ".seg"
	metaName   = "meta"
	lockName   = "LOCK"
	tmpExt     = ".tmp"
	brokenExt  = ".broken"
)

// segmentName is the file name of segment index: 16 decimal digits and ".seg".
func segmentName(index uint64) string { return fmt.Sprintf("%016d%s", index, segmentExt) }

// parseSegmentName returns the index of a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// segment is one segment file and what is known of its content. For the active segment the
// counters cover what has been written to the file, not what is still buffered.
type segment struct {
	index uint64
	name  string
	path  string
	size  int64 // bytes of the file that belong to the log

	hdrErr   error  // why the header is invalid, or nil
	sourceID string // from a valid header

	// Valid frames.
	records   int
	bytes     int64 // payload bytes of the records
	firstSeq  uint64
	lastSeq   uint64
	pendSeq   uint64 // seq of the first untrimmed record, 0 if none
	hasFrames bool
	firstOff  int64  // offset of the first valid frame
	firstOrd  uint64 // of the first valid frame (record or gap)
	firstPos  uint64
	endOrd    uint64 // expected after the segment's last frame
	endPos    uint64
	validEnd  int64 // offset after the last valid frame

	// The trimmed prefix: records with seq <= the trim point, and the scan state after them.
	trim      scanState
	trimRecs  int
	trimBytes int64

	damage   []Damage // found by the scan at Open, for this segment
	tailWalk gap      // records and bytes whose headers survive in the damaged tail

	rf File // read handle of a sealed segment, opened on demand
}

// start is the scan state at the first frame of a segment.
func startState() scanState { return scanState{off: segmentHeaderSize} }

// pending is the number of untrimmed records and their bytes.
func (s *segment) pending() (int, int64) { return s.records - s.trimRecs, s.bytes - s.trimBytes }

// scanSegment reads and validates a whole segment file. Records with seq <= trimmedSeq count
// as trimmed, and losses among them are not counted. Only an I/O error is returned; damage is
// reported in the segment.
func scanSegment(fsys FS, dir, name string, index uint64, trimmedSeq uint64) (*segment, error) {
	seg := &segment{index: index, name: name, path: filepath.Join(dir, name), trim: startState(), validEnd: segmentHeaderSize}
	f, err := fsys.OpenFile(seg.path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if seg.size, err = f.Size(); err != nil {
		return nil, err
	}
	hdr := make([]byte, segmentHeaderSize)
	n, err := f.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	idx, id, herr := decodeSegmentHeader(hdr[:n])
	if herr == nil && idx != index {
		herr = fmt.Errorf("%w: index %d in file %s", ErrBadHeader, idx, name)
	}
	if herr != nil {
		if errors.Is(herr, io.ErrUnexpectedEOF) {
			herr = fmt.Errorf("%w: file of %d bytes", ErrBadHeader, seg.size)
		}
		seg.hdrErr = herr
		seg.damage = append(seg.damage, Damage{
			CorruptionError: CorruptionError{Segment: name, Offset: 0, Err: herr},
			Length:          min(seg.size, segmentHeaderSize),
		})
	} else {
		seg.sourceID = id
	}
	if seg.size <= segmentHeaderSize {
		seg.validEnd = seg.size
		return seg, nil
	}
	sc := newScanner(f, startState(), seg.size, defaultWindow, false)
	for {
		fr, skipped, lost, ok := sc.next()
		if !ok {
			if sc.err != nil {
				return nil, sc.err
			}
			if skipped.n > 0 {
				seg.damage = append(seg.damage, Damage{
					CorruptionError: CorruptionError{Segment: name, Offset: skipped.off, Err: skipped.err},
					Length:          skipped.n,
					Tail:            true,
				})
				seg.tailWalk = walkTail(f, skipped.off, seg.size, trimmedSeq)
			}
			break
		}
		if skipped.n > 0 || lost.records > 0 || lost.bytes > 0 {
			d := Damage{CorruptionError: CorruptionError{Segment: name, Offset: skipped.off, Err: skipped.err}, Length: skipped.n}
			if skipped.n == 0 {
				d.Err = ErrMissingRecords
			}
			if fr.typ != typeRecord || fr.seq > trimmedSeq {
				d.LostRecords, d.LostBytes = lost.records, lost.bytes
			}
			seg.damage = append(seg.damage, d)
		}
		if !seg.hasFrames {
			seg.hasFrames = true
			seg.firstOff, seg.firstOrd, seg.firstPos = fr.off, fr.ord, fr.pos
		}
		if fr.typ == typeRecord {
			if seg.records == 0 {
				seg.firstSeq = fr.seq
			}
			seg.records++
			seg.bytes += int64(fr.length)
			seg.lastSeq = fr.seq
			if fr.seq > trimmedSeq && seg.pendSeq == 0 {
				seg.pendSeq = fr.seq
			}
		}
		if fr.seq <= trimmedSeq || fr.typ == typeGap && seg.trimRecs == seg.records {
			if fr.typ == typeRecord {
				seg.trimRecs++
				seg.trimBytes += int64(fr.length)
			}
			seg.trim = sc.st
		}
		seg.validEnd = sc.st.off
	}
	seg.endOrd, seg.endPos = sc.st.nextOrd, sc.st.nextPos
	return seg, nil
}

// walkTail counts the frames whose headers are still intact in a damaged tail [off, end): the
// records a torn write or a damaged end took with it.
func walkTail(r io.ReaderAt, off, end int64, trimmedSeq uint64) (lost gap) {
	h := make([]byte, frameHeaderSize)
	for off+frameHeaderSize <= end {
		if _, err := r.ReadAt(h, off); err != nil {
			break
		}
		fh, err := decodeFrameHeader(h)
		if err != nil || fh.typ != typeRecord {
			break
		}
		if fh.seq > trimmedSeq {
			lost.records++
			lost.bytes += uint64(fh.length)
		}
		off += frameSize(int(fh.length))
	}
	return lost
}
