package etf

import "encoding/binary"

// Decoding of the terms that hold other terms and need more than a loop: lists (with their tails),
// maps (with the duplicate key check) and funs.

func (s *decodeState) list(pos, depth int, wantHash bool) (any, uint64, int, error) {
	p := pos + 1
	if !s.need(p, 4) {
		return nil, 0, pos, s.eof(pos)
	}
	n := uint64(binary.BigEndian.Uint32(s.data[p:]))
	p += 4
	if n == 0 {
		// A list of no elements is its tail, as BEAM reads it. Skip a run of such headers here rather
		// than by recursion, which the depth limit would not bound.
		for s.need(p, 5) && s.data[p] == TagList && binary.BigEndian.Uint32(s.data[p+1:]) == 0 {
			p += 5
		}
		return s.term(p, depth, wantHash)
	}
	if depth+1 > s.lim.MaxDepth {
		return nil, 0, pos, s.fail(pos, ErrTooDeep)
	}
	if !s.need(p, n+1) {
		return nil, 0, pos, s.eof(pos)
	}
	elems := make([]any, n)
	var hl listHasher
	var err error
	for i := range elems {
		var eh uint64
		if elems[i], eh, p, err = s.term(p, depth+1, wantHash); err != nil {
			return nil, 0, pos, err
		}
		if wantHash {
			hl.add(eh)
		}
	}
	tail, th, p, err := s.term(p, depth+1, wantHash)
	if err != nil {
		return nil, 0, pos, err
	}
	var h uint64
	if wantHash {
		h = hl.end(th)
	}
	switch t := tail.(type) {
	case List:
		if len(t) == 0 {
			return List(elems), h, p, nil
		}
		return List(append(elems, t...)), h, p, nil
	case ImproperList:
		return ImproperList{Elems: append(elems, t.Elems...), Tail: t.Tail}, h, p, nil
	}
	return ImproperList{Elems: elems, Tail: tail}, h, p, nil
}

func (s *decodeState) mapTerm(pos, depth int, wantHash bool) (any, uint64, int, error) {
	p := pos + 1
	if !s.need(p, 4) {
		return nil, 0, pos, s.eof(pos)
	}
	n := uint64(binary.BigEndian.Uint32(s.data[p:]))
	p += 4
	if depth+1 > s.lim.MaxDepth {
		return nil, 0, pos, s.fail(pos, ErrTooDeep)
	}
	if !s.need(p, 2*n) {
		return nil, 0, pos, s.eof(pos)
	}
	m := make(Map, n)
	var keyHashes []uint64
	if n > 1 {
		keyHashes = make([]uint64, n)
	}
	var h uint64
	var err error
	for i := range m {
		var kh, vh uint64
		if m[i].Key, kh, p, err = s.term(p, depth+1, n > 1 || wantHash); err != nil {
			return nil, 0, pos, err
		}
		if m[i].Value, vh, p, err = s.term(p, depth+1, wantHash); err != nil {
			return nil, 0, pos, err
		}
		if keyHashes != nil {
			keyHashes[i] = kh
		}
		if wantHash {
			h += mix(kh, vh) // order-independent: maps are equal whatever their entry order
		}
	}
	if keyHashes != nil && hasDuplicateKey(m, keyHashes, s.lim.MaxDepth) {
		return nil, 0, pos, s.fail(pos, ErrDuplicateKey)
	}
	if wantHash {
		h = mix(kindMap, h)
	}
	return m, h, p, nil
}

func (s *decodeState) fun(pos, depth int, wantHash bool) (any, uint64, int, error) {
	if depth+1 > s.lim.MaxDepth {
		return nil, 0, pos, s.fail(pos, ErrTooDeep)
	}
	p := pos + 1
	var f Fun
	var nfree uint64
	var err error
	var x int64
	if s.data[pos] == TagNewFun {
		// Size is ignored, as BEAM ignores it: releases since OTP 23 may write it too large.
		if !s.need(p, 4+1+16+4+4) {
			return nil, 0, pos, s.eof(pos)
		}
		f.Arity = s.data[p+4]
		copy(f.Uniq[:], s.data[p+5:p+21])
		f.Index = binary.BigEndian.Uint32(s.data[p+21:])
		nfree = uint64(binary.BigEndian.Uint32(s.data[p+25:]))
		p += 29
		if f.Module, p, err = s.atom(p); err != nil {
			return nil, 0, pos, err
		}
		if x, p, err = s.smallInt(p); err != nil {
			return nil, 0, pos, err
		}
		f.OldIndex = int32(x)
		if x, p, err = s.smallInt(p); err != nil {
			return nil, 0, pos, err
		}
		f.OldUniq = int32(x)
		if f.Pid, p, err = s.pid(p); err != nil {
			return nil, 0, pos, err
		}
	} else {
		f.Old = true
		if !s.need(p, 4) {
			return nil, 0, pos, s.eof(pos)
		}
		nfree = uint64(binary.BigEndian.Uint32(s.data[p:]))
		p += 4
		if f.Pid, p, err = s.pid(p); err != nil {
			return nil, 0, pos, err
		}
		if f.Module, p, err = s.atom(p); err != nil {
			return nil, 0, pos, err
		}
		if x, p, err = s.smallInt(p); err != nil {
			return nil, 0, pos, err
		}
		f.OldIndex = int32(x)
		if x, p, err = s.smallInt(p); err != nil {
			return nil, 0, pos, err
		}
		f.OldUniq = int32(x)
	}
	if !s.need(p, nfree) {
		return nil, 0, pos, s.eof(pos)
	}
	var h uint64
	if wantHash {
		h = mix(mix(mix(kindFun, s.hashString(string(f.Module))), uint64(f.Index)), s.hashBytes(kindBinary, f.Uniq[:]))
		h = mix(mix(h, uint64(f.OldIndex)), uint64(f.OldUniq))
	}
	if nfree > 0 {
		f.Free = make([]any, nfree)
		for i := range f.Free {
			var eh uint64
			if f.Free[i], eh, p, err = s.term(p, depth+1, wantHash); err != nil {
				return nil, 0, pos, err
			}
			if wantHash {
				h = mix(h, eh)
			}
		}
	}
	return f, h, p, nil
}
