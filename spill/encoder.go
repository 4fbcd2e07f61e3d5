package spill

import (
	"encoding/binary"
	"hash/crc32"
)

// The on-disk format is specified in docs/spill-format.md; this file and decoder.go implement
// it (meta.go the meta file). Every integer is little-endian; every frame starts on an 8-byte boundary.

const (
	// segmentMagic opens every segment file.
	segmentMagic = "PHSPILL\x00"
	// formatVersion is the version of the segment format (the meta file's is metaVersion).
	formatVersion = 1

	// segmentHeaderSize: magic, version, id length, reserved, CRC, index, reserved, source id.
	segmentHeaderSize = 96
	// frameHeaderSize: length and type, header CRC, seq, ord, pos, payload CRC, reserved.
	frameHeaderSize = 40

	// MaxSourceIDLen is the longest sender identity the format holds.
	MaxSourceIDLen = 64
	// maxFrameLen is the longest payload a frame's 24-bit length can describe.
	maxFrameLen = 1<<24 - 1
	// gapPayloadLen is the payload length of a gap frame: lost records and lost bytes.
	gapPayloadLen = 16
)

// Frame types.
const (
	typeInvalid byte = 0 // never written: zero-filled space reads as this
	typeRecord  byte = 1 // a record
	typeGap     byte = 2 // written by Repair: records [ord, ord+n) are known to be lost
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is a decoded frame header.
type frameHeader struct {
	typ    byte
	length uint32 // payload bytes
	seq    uint64
	ord    uint64 // record number: dense, one per record since the log was created
	pos    uint64 // payload bytes of every record before this one since the log was created
	crc    uint32 // payload CRC-32C
}

// pad8 rounds n up to a multiple of 8.
func pad8(n int64) int64 { return (n + 7) &^ 7 }

// frameSize is the size on disk of a frame carrying n payload bytes.
func frameSize(n int) int64 { return frameHeaderSize + pad8(int64(n)) }

// appendFrame appends the frame for payload to dst.
func appendFrame(dst []byte, typ byte, seq, ord, pos uint64, payload []byte) []byte {
	start := len(dst)
	size := int(frameSize(len(payload)))
	dst = append(dst, make([]byte, size)...)
	f := dst[start : start+size]
	binary.LittleEndian.PutUint32(f[0:4], uint32(len(payload))|uint32(typ)<<24)
	binary.LittleEndian.PutUint64(f[8:16], seq)
	binary.LittleEndian.PutUint64(f[16:24], ord)
	binary.LittleEndian.PutUint64(f[24:32], pos)
	copy(f[frameHeaderSize:], payload)
	binary.LittleEndian.PutUint32(f[32:36], crc32.Checksum(payload, castagnoli))
	binary.LittleEndian.PutUint32(f[4:8], headerCRC(f[:frameHeaderSize]))
	return dst
}

// appendGap appends a gap frame: records [ord, ord+records) and payload bytes [pos, pos+bytes)
// are known to be lost. seq is the log number of the last record before the gap.
func appendGap(dst []byte, seq, ord, pos, records, bytes uint64) []byte {
	var p [gapPayloadLen]byte
	binary.LittleEndian.PutUint64(p[0:8], records)
	binary.LittleEndian.PutUint64(p[8:16], bytes)
	return appendFrame(dst, typeGap, seq, ord, pos, p[:])
}

// headerCRC is the CRC-32C of a frame header without its CRC field.
func headerCRC(h []byte) uint32 {
	c := crc32.Update(0, castagnoli, h[0:4])
	return crc32.Update(c, castagnoli, h[8:frameHeaderSize])
}

// encodeSegmentHeader returns the header of segment index for sourceID.
func encodeSegmentHeader(index uint64, sourceID string) []byte {
	h := make([]byte, segmentHeaderSize)
	copy(h[0:8], segmentMagic)
	binary.LittleEndian.PutUint16(h[8:10], formatVersion)
	h[10] = byte(len(sourceID))
	binary.LittleEndian.PutUint64(h[16:24], index)
	copy(h[32:32+MaxSourceIDLen], sourceID)
	binary.LittleEndian.PutUint32(h[12:16], skipCRC(h, 12))
	return h
}

// skipCRC is the CRC-32C of b without the 4 bytes at off.
func skipCRC(b []byte, off int) uint32 {
	c := crc32.Update(0, castagnoli, b[:off])
	return crc32.Update(c, castagnoli, b[off+4:])
}
