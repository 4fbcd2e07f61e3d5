package etf

import (
	"encoding/binary"
	"unicode/utf8"
)

// Decoding of atoms and of the identifiers built on them: pids, ports, references, external funs.

// atom decodes any of the atom encodings at pos.
func (s *decodeState) atom(pos int) (Atom, int, error) {
	if pos >= len(s.data) {
		return "", pos, s.eof(pos)
	}
	tag := s.data[pos]
	p := pos + 1
	var n int
	switch tag {
	case TagAtom, TagAtomUTF8:
		if !s.need(p, 2) {
			return "", pos, s.eof(pos)
		}
		n, p = int(binary.BigEndian.Uint16(s.data[p:])), p+2
	case TagSmallAtom, TagSmallAtomUTF8:
		if !s.need(p, 1) {
			return "", pos, s.eof(pos)
		}
		n, p = int(s.data[p]), p+1
	case TagAtomCacheRef:
		if !s.need(p, 1) {
			return "", pos, s.eof(pos)
		}
		i := int(s.data[p])
		if i >= len(s.atoms) {
			return "", pos, s.fail(pos, ErrAtomCache)
		}
		return s.atoms[i], p + 1, nil
	case TagLocal:
		return "", pos, s.fail(pos, ErrLocalExt)
	default:
		return "", pos, s.fail(pos, ErrUnknownTag)
	}
	latin1 := tag == TagAtom || tag == TagSmallAtom
	if (latin1 && n > maxAtomRunes) || n > maxAtomBytes {
		return "", pos, s.fail(pos, ErrInvalid)
	}
	if !s.need(p, uint64(n)) {
		return "", pos, s.eof(pos)
	}
	b := s.data[p : p+n]
	if latin1 {
		return Atom(latin1String(b)), p + n, nil
	}
	if !utf8.Valid(b) || (n > maxAtomRunes && utf8.RuneCount(b) > maxAtomRunes) {
		return "", pos, s.fail(pos, ErrInvalid)
	}
	return Atom(b), p + n, nil
}

// latin1String converts Latin-1 bytes to a UTF-8 string.
func latin1String(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// smallInt decodes SMALL_INTEGER_EXT or INTEGER_EXT, the only forms fun and export fields take.
func (s *decodeState) smallInt(pos int) (int64, int, error) {
	if pos >= len(s.data) {
		return 0, pos, s.eof(pos)
	}
	switch s.data[pos] {
	case TagSmallInteger:
		if !s.need(pos+1, 1) {
			return 0, pos, s.eof(pos)
		}
		return int64(s.data[pos+1]), pos + 2, nil
	case TagInteger:
		if !s.need(pos+1, 4) {
			return 0, pos, s.eof(pos)
		}
		return int64(int32(binary.BigEndian.Uint32(s.data[pos+1:]))), pos + 5, nil
	}
	return 0, pos, s.fail(pos, ErrUnknownTag)
}

// pid decodes PID_EXT or NEW_PID_EXT at pos.
func (s *decodeState) pid(pos int) (Pid, int, error) {
	if pos >= len(s.data) {
		return Pid{}, pos, s.eof(pos)
	}
	tag := s.data[pos]
	if tag != TagPid && tag != TagNewPid {
		return Pid{}, pos, s.fail(pos, ErrUnknownTag)
	}
	node, q, err := s.atom(pos + 1)
	if err != nil {
		return Pid{}, pos, err
	}
	pid := Pid{Node: node}
	if tag == TagPid {
		if !s.need(q, 9) {
			return Pid{}, pos, s.eof(pos)
		}
		pid.Creation = uint32(s.data[q+8])
		if pid.Creation > 3 {
			return Pid{}, pos, s.fail(pos, ErrInvalid)
		}
	} else {
		if !s.need(q, 12) {
			return Pid{}, pos, s.eof(pos)
		}
		pid.Creation = binary.BigEndian.Uint32(s.data[q+8:])
	}
	pid.ID = binary.BigEndian.Uint32(s.data[q:])
	pid.Serial = binary.BigEndian.Uint32(s.data[q+4:])
	if tag == TagPid {
		return pid, q + 9, nil
	}
	return pid, q + 12, nil
}

// ref decodes REFERENCE_EXT, NEW_REFERENCE_EXT or NEWER_REFERENCE_EXT at pos.
func (s *decodeState) ref(pos int) (Ref, int, error) {
	tag := s.data[pos]
	p := pos + 1
	var ref Ref
	if tag == TagReference {
		node, q, err := s.atom(p)
		if err != nil {
			return Ref{}, pos, err
		}
		if !s.need(q, 5) {
			return Ref{}, pos, s.eof(pos)
		}
		ref.Node, ref.Len, ref.ID[0], ref.Creation = node, 1, binary.BigEndian.Uint32(s.data[q:]), uint32(s.data[q+4])
		if ref.ID[0] >= 1<<18 || ref.Creation > 3 {
			return Ref{}, pos, s.fail(pos, ErrInvalid)
		}
		return ref, q + 5, nil
	}
	if !s.need(p, 2) {
		return Ref{}, pos, s.eof(pos)
	}
	n := binary.BigEndian.Uint16(s.data[p:])
	if n == 0 || n > maxRefWords {
		return Ref{}, pos, s.fail(pos, ErrInvalid)
	}
	node, q, err := s.atom(p + 2)
	if err != nil {
		return Ref{}, pos, err
	}
	ref.Node, ref.Len = node, uint8(n)
	if tag == TagNewReference {
		if !s.need(q, 1+4*uint64(n)) {
			return Ref{}, pos, s.eof(pos)
		}
		ref.Creation, q = uint32(s.data[q]), q+1
		if ref.Creation > 3 {
			return Ref{}, pos, s.fail(pos, ErrInvalid)
		}
	} else {
		if !s.need(q, 4+4*uint64(n)) {
			return Ref{}, pos, s.eof(pos)
		}
		ref.Creation, q = binary.BigEndian.Uint32(s.data[q:]), q+4
	}
	for i := range int(n) {
		ref.ID[i], q = binary.BigEndian.Uint32(s.data[q:]), q+4
	}
	if tag == TagNewReference && ref.ID[0] >= 1<<18 {
		return Ref{}, pos, s.fail(pos, ErrInvalid)
	}
	return ref, q, nil
}

// port decodes PORT_EXT, NEW_PORT_EXT or V4_PORT_EXT at pos.
func (s *decodeState) port(pos int) (Port, int, error) {
	tag := s.data[pos]
	node, q, err := s.atom(pos + 1)
	if err != nil {
		return Port{}, pos, err
	}
	port := Port{Node: node}
	switch tag {
	case TagPort:
		if !s.need(q, 5) {
			return Port{}, pos, s.eof(pos)
		}
		port.ID, port.Creation, q = uint64(binary.BigEndian.Uint32(s.data[q:])), uint32(s.data[q+4]), q+5
		if port.Creation > 3 {
			return Port{}, pos, s.fail(pos, ErrInvalid)
		}
	case TagNewPort:
		if !s.need(q, 8) {
			return Port{}, pos, s.eof(pos)
		}
		port.ID, port.Creation, q = uint64(binary.BigEndian.Uint32(s.data[q:])), binary.BigEndian.Uint32(s.data[q+4:]), q+8
	default:
		if !s.need(q, 12) {
			return Port{}, pos, s.eof(pos)
		}
		port.ID, port.Creation, q = binary.BigEndian.Uint64(s.data[q:]), binary.BigEndian.Uint32(s.data[q+8:]), q+12
	}
	return port, q, nil
}

// export decodes EXPORT_EXT at pos.
func (s *decodeState) export(pos int) (Export, int, error) {
	mod, q, err := s.atom(pos + 1)
	if err != nil {
		return Export{}, pos, err
	}
	fn, q, err := s.atom(q)
	if err != nil {
		return Export{}, pos, err
	}
	arity, q, err := s.smallInt(q)
	if err != nil {
		return Export{}, pos, err
	}
	if arity < 0 || arity > 255 {
		return Export{}, pos, s.fail(pos, ErrInvalid)
	}
	return Export{Module: mod, Function: fn, Arity: uint8(arity)}, q, nil
}
