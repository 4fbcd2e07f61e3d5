package node

// A small private ETF codec for control messages: the fields a control tuple holds (atoms,
// integers, pids, references) are written and read here directly, without going through the
// general etf package, so the per-message cost stays a few appends. Arbitrary terms (exit
// reasons, trace tokens, message bodies) are only skipped here and handed to package etf.
// Tags: https://www.erlang.org/doc/apps/erts/erl_ext_dist.html

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
)

// The tags are etf's (etf/tags.go): defined once.

// errBadTerm is wrapped by every decoding error of this file.
var errBadTerm = errors.New("malformed term")

// ---- encoding ----

func appendAtom(dst []byte, a string) []byte {
	if len(a) < 256 {
		dst = append(dst, etf.TagSmallAtomUTF8, byte(len(a)))
	} else {
		dst = append(dst, etf.TagAtomUTF8)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(a)))
	}
	return append(dst, a...)
}

func appendTupleHeader(dst []byte, arity int) []byte {
	if arity < 256 {
		return append(dst, etf.TagSmallTuple, byte(arity))
	}
	dst = append(dst, etf.TagLargeTuple)
	return binary.BigEndian.AppendUint32(dst, uint32(arity))
}

func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0 && v < 256:
		return append(dst, etf.TagSmallInteger, byte(v))
	case v >= -1<<31 && v < 1<<31:
		dst = append(dst, etf.TagInteger)
		return binary.BigEndian.AppendUint32(dst, uint32(int32(v)))
	}
	sign := byte(0)
	u := uint64(v)
	if v < 0 {
		sign, u = 1, uint64(-v)
	}
	n := (64 - leadingZeros(u) + 7) / 8
	dst = append(dst, etf.TagSmallBig, byte(n), sign)
	for i := 0; i < n; i++ {
		dst = append(dst, byte(u>>(8*i)))
	}
	return dst
}

func leadingZeros(u uint64) int {
	n := 0
	for i := 63; i >= 0 && u&(1<<i) == 0; i-- {
		n++
	}
	return n
}

// appendPid writes a gen.PID as NEW_PID_EXT: the low 32 bits of ID are the Erlang "ID", the high
// 32 bits the "Serial" (a v4 node container pid number is 64 bits wide).
func appendPid(dst []byte, p gen.PID) []byte {
	dst = append(dst, etf.TagNewPid)
	dst = appendAtom(dst, string(p.Node))
	dst = binary.BigEndian.AppendUint32(dst, uint32(p.ID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(p.ID>>32))
	return binary.BigEndian.AppendUint32(dst, uint32(p.Creation))
}

// refWords maps gen.Ref ids to Erlang reference words as package etf does: word i (0..2) is
// the low half of ID[i]; words 3 and 4 are the high halves of ID[0] and ID[1]. The high half of
// ID[2] has no place on the wire.
func refWords(r gen.Ref) ([5]uint32, int) {
	w := [5]uint32{uint32(r.ID[0]), uint32(r.ID[1]), uint32(r.ID[2]), uint32(r.ID[0] >> 32), uint32(r.ID[1] >> 32)}
	switch {
	case w[4] != 0:
		return w, 5
	case w[3] != 0:
		return w, 4
	}
	return w, 3
}

func appendRef(dst []byte, r gen.Ref) []byte {
	w, n := refWords(r)
	dst = append(dst, etf.TagNewerRef)
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = appendAtom(dst, string(r.Node))
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.Creation))
	for _, x := range w[:n] {
		dst = binary.BigEndian.AppendUint32(dst, x)
	}
	return dst
}

// ---- decoding ----

// termReader reads control-message fields from b. It never panics: every read checks the bytes
// left first.
type termReader struct {
	b   []byte
	off int
}

func (r *termReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", errBadTerm, r.off, fmt.Sprintf(format, args...))
}

func (r *termReader) need(n int) error {
	if n < 0 || len(r.b)-r.off < n {
		return fmt.Errorf("%w at byte %d: %w", errBadTerm, r.off, io.ErrUnexpectedEOF)
	}
	return nil
}

func (r *termReader) u8() (byte, error) {
	if err := r.need(1); err != nil {
		return 0, err
	}
	v := r.b[r.off]
	r.off++
	return v, nil
}

func (r *termReader) u16() (int, error) {
	if err := r.need(2); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return int(v), nil
}

func (r *termReader) u32() (uint32, error) {
	if err := r.need(4); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *termReader) bytes(n int) ([]byte, error) {
	if err := r.need(n); err != nil {
		return nil, err
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v, nil
}

// version consumes the 131 version byte.
func (r *termReader) version() error {
	v, err := r.u8()
	if err != nil {
		return err
	}
	if v != etf.TagVersion {
		return r.fail("version byte %d, want 131", v)
	}
	return nil
}

func (r *termReader) peek() (byte, error) {
	if err := r.need(1); err != nil {
		return 0, err
	}
	return r.b[r.off], nil
}

func (r *termReader) tupleHeader() (int, error) {
	tag, err := r.u8()
	if err != nil {
		return 0, err
	}
	switch tag {
	case etf.TagSmallTuple:
		n, err := r.u8()
		return int(n), err
	case etf.TagLargeTuple:
		n, err := r.u32()
		if err == nil && int64(n) > int64(len(r.b)-r.off) {
			return 0, fmt.Errorf("%w at byte %d: tuple arity %d exceeds the bytes left: %w", errBadTerm, r.off, n, io.ErrUnexpectedEOF)
		}
		return int(n), err
	}
	return 0, r.fail("tag %d, want a tuple", tag)
}

func (r *termReader) atom() (string, error) {
	tag, err := r.u8()
	if err != nil {
		return "", err
	}
	var n int
	switch tag {
	case etf.TagSmallAtomUTF8, etf.TagSmallAtom:
		b, err := r.u8()
		if err != nil {
			return "", err
		}
		n = int(b)
	case etf.TagAtomUTF8, etf.TagAtom:
		if n, err = r.u16(); err != nil {
			return "", err
		}
	default:
		return "", r.fail("tag %d, want an atom", tag)
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if tag == etf.TagAtom || tag == etf.TagSmallAtom {
		return latin1(b), nil
	}
	if !utf8.Valid(b) {
		return "", r.fail("atom is not valid UTF-8")
	}
	return string(b), nil
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// integer reads a small, 32-bit or small-big integer that fits in an int64.
func (r *termReader) integer() (int64, error) {
	tag, err := r.u8()
	if err != nil {
		return 0, err
	}
	switch tag {
	case etf.TagSmallInteger:
		v, err := r.u8()
		return int64(v), err
	case etf.TagInteger:
		v, err := r.u32()
		return int64(int32(v)), err
	case etf.TagSmallBig:
		n, err := r.u8()
		if err != nil {
			return 0, err
		}
		sign, err := r.u8()
		if err != nil {
			return 0, err
		}
		b, err := r.bytes(int(n))
		if err != nil {
			return 0, err
		}
		if n > 8 {
			return 0, r.fail("integer of %d bytes", n)
		}
		var u uint64
		for i := len(b) - 1; i >= 0; i-- {
			u = u<<8 | uint64(b[i])
		}
		if u > 1<<63-1 && !(sign == 1 && u == 1<<63) {
			return 0, r.fail("integer overflows int64")
		}
		if sign == 1 {
			return -int64(u), nil
		}
		return int64(u), nil
	}
	return 0, r.fail("tag %d, want an integer", tag)
}

func (r *termReader) pid() (gen.PID, error) {
	tag, err := r.u8()
	if err != nil {
		return gen.PID{}, err
	}
	if tag != etf.TagNewPid && tag != etf.TagPid {
		return gen.PID{}, r.fail("tag %d, want a pid", tag)
	}
	node, err := r.atom()
	if err != nil {
		return gen.PID{}, err
	}
	id, err := r.u32()
	if err != nil {
		return gen.PID{}, err
	}
	serial, err := r.u32()
	if err != nil {
		return gen.PID{}, err
	}
	creation, err := r.creation(tag == etf.TagNewPid)
	if err != nil {
		return gen.PID{}, err
	}
	return gen.PID{Node: gen.Atom(node), ID: uint64(serial)<<32 | uint64(id), Creation: int64(creation)}, nil
}

// creation reads a pid's or reference's creation: 4 bytes in the current encodings (NEW_PID,
// NEWER_REFERENCE), 1 byte in the old ones.
func (r *termReader) creation(wide bool) (uint32, error) {
	if wide {
		return r.u32()
	}
	c, err := r.u8()
	return uint32(c), err
}

func (r *termReader) ref() (gen.Ref, error) {
	tag, err := r.u8()
	if err != nil {
		return gen.Ref{}, err
	}
	if tag != etf.TagNewerRef && tag != etf.TagNewReference {
		return gen.Ref{}, r.fail("tag %d, want a reference", tag)
	}
	n, err := r.u16()
	if err != nil {
		return gen.Ref{}, err
	}
	if n > 5 {
		return gen.Ref{}, r.fail("reference of %d words", n)
	}
	node, err := r.atom()
	if err != nil {
		return gen.Ref{}, err
	}
	creation, err := r.creation(tag == etf.TagNewerRef)
	if err != nil {
		return gen.Ref{}, err
	}
	ref := gen.Ref{Node: gen.Atom(node), Creation: int64(creation)}
	for i := 0; i < n; i++ {
		w, err := r.u32()
		if err != nil {
			return gen.Ref{}, err
		}
		if i < 3 {
			ref.ID[i] |= uint64(w)
		} else {
			ref.ID[i-3] |= uint64(w) << 32
		}
	}
	return ref, nil
}

// skip steps over one complete term of any kind without decoding it, iteratively (no recursion,
// so no depth limit is needed), and returns the bytes it covered.
func (r *termReader) skip() ([]byte, error) {
	start := r.off
	pending := 1
	for pending > 0 {
		pending--
		tag, err := r.u8()
		if err != nil {
			return nil, err
		}
		fixed := 0
		switch tag {
		case etf.TagNewFloat:
			fixed = 8
		case etf.TagAtomCacheRef, etf.TagSmallInteger:
			fixed = 1
		case etf.TagInteger:
			fixed = 4
		case etf.TagFloat:
			fixed = 31
		case etf.TagAtom, etf.TagAtomUTF8, etf.TagString:
			n, err := r.u16()
			if err != nil {
				return nil, err
			}
			fixed = n
		case etf.TagSmallAtom, etf.TagSmallAtomUTF8:
			n, err := r.u8()
			if err != nil {
				return nil, err
			}
			fixed = int(n)
		case etf.TagBinary:
			n, err := r.u32()
			if err != nil {
				return nil, err
			}
			fixed = int(n)
		case etf.TagBitBinary:
			n, err := r.u32()
			if err != nil {
				return nil, err
			}
			fixed = int(n) + 1
		case etf.TagSmallBig:
			n, err := r.u8()
			if err != nil {
				return nil, err
			}
			fixed = int(n) + 1
		case etf.TagLargeBig:
			n, err := r.u32()
			if err != nil {
				return nil, err
			}
			fixed = int(n) + 1
		case etf.TagNil:
		case etf.TagSmallTuple:
			n, err := r.u8()
			if err != nil {
				return nil, err
			}
			pending += int(n)
		case etf.TagLargeTuple, etf.TagList, etf.TagMap:
			n, err := r.u32()
			if err != nil {
				return nil, err
			}
			switch tag {
			case etf.TagList:
				pending += int(n) + 1
			case etf.TagMap:
				pending += 2 * int(n)
			default:
				pending += int(n)
			}
		case etf.TagNewPid, etf.TagPid, etf.TagNewPort, etf.TagPort, etf.TagV4Port:
			// the node atom, then a fixed part
			if _, err := r.atom(); err != nil {
				return nil, err
			}
			switch tag {
			case etf.TagNewPid, etf.TagV4Port:
				fixed = 12
			case etf.TagPid:
				fixed = 9
			case etf.TagNewPort:
				fixed = 8
			case etf.TagPort:
				fixed = 5
			}
		case etf.TagNewerRef, etf.TagNewReference:
			n, err := r.u16()
			if err != nil {
				return nil, err
			}
			if _, err := r.atom(); err != nil {
				return nil, err
			}
			fixed = 4 * n
			if tag == etf.TagNewerRef {
				fixed += 4
			} else {
				fixed++
			}
		case etf.TagReference:
			if _, err := r.atom(); err != nil {
				return nil, err
			}
			fixed = 5
		case etf.TagNewFun:
			n, err := r.u32()
			if err != nil {
				return nil, err
			}
			fixed = int(n) - 4
		case etf.TagExport:
			pending += 3
		default:
			return nil, r.fail("unknown tag %d", tag)
		}
		if _, err := r.bytes(fixed); err != nil {
			return nil, err
		}
		if pending > len(r.b)-r.off {
			return nil, fmt.Errorf("%w at byte %d: %d terms announced, %d bytes left: %w",
				errBadTerm, r.off, pending, len(r.b)-r.off, io.ErrUnexpectedEOF)
		}
	}
	return r.b[start:r.off], nil
}
