package spill

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The meta file (docs/spill-format.md, "Meta file"): its codec, and how the Log keeps it.

const (
	// metaMagic opens the meta file.
	metaMagic = "PHSMETA\x00"
	// metaVersion is the version of the meta file this package writes. Version 1 (a sequence
	// lease, no numbering) is read, and converted at Open (convert.go).
	metaVersion = 2
	// metaHeaderSize: magic, version, id length, flags, CRC, span count, reserved, trimmed
	// seq, head ord, head pos, unsent from, source id; the spans follow, 16 bytes each.
	metaHeaderSize = 120
	// metaV1Size is the whole of a version-1 meta file.
	metaV1Size = 120
	// metaSpanSize is one span: log number, record number.
	metaSpanSize = 16
	// maxMetaSpans bounds the spans a meta file may hold (and WithMaxSpans).
	maxMetaSpans = 1 << 16

	metaFlagClean = 1 // the Log that wrote it was closed cleanly
)

// meta is the content of the meta file.
type meta struct {
	version    int // as read; written as metaVersion
	sourceID   string
	clean      bool
	trimmedSeq uint64 // every record with a log number <= trimmedSeq is trimmed
	headOrd    uint64 // record number of the oldest record that should exist
	headPos    uint64 // its payload position
	unsent     uint64 // log number of the unsent marker, 0 if none
	spans      []seqSpan
	v1NextSeq  uint64 // version 1: no log number at or above it was handed out
}

func encodeMeta(m meta) []byte {
	b := make([]byte, metaHeaderSize+metaSpanSize*len(m.spans))
	copy(b[0:8], metaMagic)
	binary.LittleEndian.PutUint16(b[8:10], metaVersion)
	b[10] = byte(len(m.sourceID))
	if m.clean {
		b[11] = metaFlagClean
	}
	binary.LittleEndian.PutUint32(b[16:20], uint32(len(m.spans)))
	binary.LittleEndian.PutUint64(b[24:32], m.trimmedSeq)
	binary.LittleEndian.PutUint64(b[32:40], m.headOrd)
	binary.LittleEndian.PutUint64(b[40:48], m.headPos)
	binary.LittleEndian.PutUint64(b[48:56], m.unsent)
	copy(b[56:56+MaxSourceIDLen], m.sourceID)
	for i, s := range m.spans {
		o := metaHeaderSize + metaSpanSize*i
		binary.LittleEndian.PutUint64(b[o:o+8], s.from)
		binary.LittleEndian.PutUint64(b[o+8:o+16], s.num)
	}
	binary.LittleEndian.PutUint32(b[12:16], skipCRC(b, 12))
	return b
}

// decodeMeta validates and decodes a meta file of version 1 or 2. Bytes past the end a version
// 2 file declares are ignored (an in-place rewrite that could not shrink the file leaves them).
func decodeMeta(b []byte) (meta, error) {
	if len(b) < metaHeaderSize {
		return meta{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrBadMeta, len(b), metaHeaderSize)
	}
	if string(b[0:8]) != metaMagic {
		return meta{}, fmt.Errorf("%w: bad magic", ErrBadMeta)
	}
	v := binary.LittleEndian.Uint16(b[8:10])
	switch v {
	case 1:
		if len(b) != metaV1Size {
			return meta{}, fmt.Errorf("%w: version 1 of %d bytes, want %d", ErrBadMeta, len(b), metaV1Size)
		}
	case metaVersion:
		n := binary.LittleEndian.Uint32(b[16:20])
		if n == 0 || n > maxMetaSpans {
			return meta{}, fmt.Errorf("%w: %d spans", ErrBadMeta, n)
		}
		size := metaHeaderSize + metaSpanSize*int(n)
		if len(b) < size {
			return meta{}, fmt.Errorf("%w: %d bytes, %d spans need %d", ErrBadMeta, len(b), n, size)
		}
		b = b[:size]
	default:
		return meta{}, fmt.Errorf("%w: version %d", ErrBadMeta, v)
	}
	if binary.LittleEndian.Uint32(b[12:16]) != skipCRC(b, 12) {
		return meta{}, fmt.Errorf("%w: %w", ErrBadMeta, ErrChecksum)
	}
	n := int(b[10])
	if n > MaxSourceIDLen {
		return meta{}, fmt.Errorf("%w: source id length %d", ErrBadMeta, n)
	}
	m := meta{
		version:    int(v),
		sourceID:   string(b[56 : 56+n]),
		trimmedSeq: binary.LittleEndian.Uint64(b[24:32]),
		headOrd:    binary.LittleEndian.Uint64(b[32:40]),
		headPos:    binary.LittleEndian.Uint64(b[40:48]),
	}
	if v == 1 {
		m.v1NextSeq = binary.LittleEndian.Uint64(b[16:24])
		return m, nil
	}
	if b[11]&^metaFlagClean != 0 || binary.LittleEndian.Uint32(b[20:24]) != 0 {
		return meta{}, fmt.Errorf("%w: reserved bits set", ErrBadMeta)
	}
	m.clean = b[11]&metaFlagClean != 0
	m.unsent = binary.LittleEndian.Uint64(b[48:56])
	for o := metaHeaderSize; o < len(b); o += metaSpanSize {
		s := seqSpan{from: binary.LittleEndian.Uint64(b[o : o+8]), num: binary.LittleEndian.Uint64(b[o+8 : o+16])}
		if len(m.spans) > 0 && s.from <= m.spans[len(m.spans)-1].from {
			return meta{}, fmt.Errorf("%w: spans out of order", ErrBadMeta)
		}
		m.spans = append(m.spans, s)
	}
	return m, nil
}

// metaState is what the Log knows of its meta file. Guarded by Log.mu.
type metaState struct {
	persistedTrim uint64    // the trim point as the meta file has it
	written       time.Time // when the meta file was last written
	headOrd       uint64    // as the meta file has them
	headPos       uint64
}

// metaLocked is the meta file for the Log's current state, its spans pruned below the trim point.
func (l *Log) metaLocked(clean bool) meta {
	return meta{
		sourceID: l.sourceID, clean: clean, trimmedSeq: l.rd.trimmedSeq,
		headOrd: l.meta.headOrd, headPos: l.meta.headPos, unsent: l.num.unsent,
		spans: pruneSpans(l.num.spans, l.rd.trimmedSeq+1),
	}
}

// writeMetaLocked persists m, which then is the Log's numbering (its spans and marker). If the
// atomic replacement fails for want of space (a full disk cannot hold meta.tmp), it overwrites
// the file in place and fsyncs it: the CRC tells a torn one.
func (l *Log) writeMetaLocked(m meta) error {
	b := encodeMeta(m)
	path := filepath.Join(l.dir, metaName)
	err := writeAtomic(l.fs, l.dir, path, b)
	if errors.Is(err, ErrNoSpace) {
		// Not when an fsync failed: the old file then stays as it was.
		f, oerr := l.fs.OpenFile(path, os.O_WRONLY, 0)
		if oerr == nil {
			_, oerr = f.WriteAt(b, 0)
			if oerr == nil {
				f.Truncate(int64(len(b))) // if it fails, decodeMeta ignores what lies past the end
				oerr = f.Sync()
			}
			f.Close()
		}
		if oerr == nil {
			err = nil
		}
	}
	if err != nil {
		l.stats.WriteErrors++
		return err
	}
	l.meta.persistedTrim = m.trimmedSeq
	l.meta.written = l.o.clock.Now()
	l.num.setSpans(m.spans)
	l.num.unsent = m.unsent
	return nil
}

// persistTrimLocked writes a moved trim point to the meta file, at most once per sync interval
// (SyncNever: only with segment deletions and at Close).
func (l *Log) persistTrimLocked() error {
	if l.rd.trimmedSeq == l.meta.persistedTrim || l.closed || l.o.sync == SyncNever {
		return nil
	}
	if l.o.clock.Now().Sub(l.meta.written) < l.o.interval {
		return nil
	}
	return l.writeMetaLocked(l.metaLocked(false))
}
