package etf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"unicode/utf8"

	"ergo.services/ergo/gen"
)

// Marshal returns the external term format of v with the version byte 131, as term_to_binary/1 does
// (up to encoding choices BEAM accepts, see doc.go). The Go types it accepts are listed in doc.go.
func Marshal(v any) ([]byte, error) {
	out, err := encoder{maxDepth: DefaultMaxDepth}.term(append(make([]byte, 0, 64), TagVersion), v, 0)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendTerm appends the encoding of v, without the version byte, to dst and returns the extended
// buffer: the form a term takes after a distribution header. It is a type switch, without reflection;
// appending into a buffer with room allocates nothing. On error it returns dst unchanged in length
// (bytes past it may have been written).
func AppendTerm(dst []byte, v any) ([]byte, error) {
	n := len(dst)
	out, err := encoder{maxDepth: DefaultMaxDepth}.term(dst, v, 0)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// encoder carries the options of one encoding. canonical sorts map entries by the encoding of their
// keys, so that terms equal in Erlang encode to the same bytes (used by Equal and the map key checks).
type encoder struct {
	maxDepth  int
	canonical bool
}

func (e encoder) term(dst []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case Atom:
		return appendAtomValue(dst, string(x), v)
	case gen.Atom:
		return appendAtomValue(dst, string(x), v)
	case bool:
		if x {
			return append(dst, TagSmallAtomUTF8, 4, 't', 'r', 'u', 'e'), nil
		}
		return append(dst, TagSmallAtomUTF8, 5, 'f', 'a', 'l', 's', 'e'), nil
	case string:
		if uint64(len(x)) > math.MaxUint32 {
			return dst, encodeError(v, ErrTooLarge)
		}
		return appendBinary(dst, x), nil
	case []byte:
		if uint64(len(x)) > math.MaxUint32 {
			return dst, encodeError(v, ErrTooLarge)
		}
		return appendBinary(dst, x), nil
	case BitBinary:
		return appendBitBinary(dst, x)
	case int:
		return appendInt(dst, int64(x)), nil
	case int8:
		return appendInt(dst, int64(x)), nil
	case int16:
		return appendInt(dst, int64(x)), nil
	case int32:
		return appendInt(dst, int64(x)), nil
	case int64:
		return appendInt(dst, x), nil
	case uint:
		return appendUint(dst, uint64(x)), nil
	case uint8:
		return appendUint(dst, uint64(x)), nil
	case uint16:
		return appendUint(dst, uint64(x)), nil
	case uint32:
		return appendUint(dst, uint64(x)), nil
	case uint64:
		return appendUint(dst, x), nil
	case *big.Int:
		if x == nil {
			return dst, encodeError(v, ErrInvalidValue)
		}
		return appendBig(dst, x)
	case float64:
		return appendFloat(dst, x)
	case float32:
		return appendFloat(dst, float64(x))
	case Tuple:
		return e.tuple(dst, x, depth)
	case List:
		if len(x) == 0 {
			return append(dst, TagNil), nil
		}
		return e.list(dst, x, nil, depth)
	case []any:
		if len(x) == 0 {
			return append(dst, TagNil), nil
		}
		return e.list(dst, x, nil, depth)
	case ImproperList:
		return e.list(dst, x.Elems, x.Tail, depth)
	case Map:
		return e.mapTerm(dst, x, depth)
	case Pid:
		return appendPid(dst, x)
	case gen.PID:
		p, err := PidFromGen(x)
		if err != nil {
			return dst, err
		}
		return appendPid(dst, p)
	case Ref:
		return appendRef(dst, x)
	case gen.Ref:
		r, err := RefFromGen(x)
		if err != nil {
			return dst, err
		}
		return appendRef(dst, r)
	case gen.Alias:
		r, err := RefFromGen(gen.Ref(x))
		if err != nil {
			return dst, err
		}
		return appendRef(dst, r)
	case Port:
		return appendPort(dst, x)
	case Export:
		return appendExport(dst, x)
	case Fun:
		return e.fun(dst, x, depth)
	}
	return dst, encodeError(v, ErrUnsupportedType)
}

func appendAtomValue(dst []byte, s string, v any) ([]byte, error) {
	out, err := appendAtom(dst, s)
	if err != nil {
		return dst, encodeError(v, err)
	}
	return out, nil
}

// appendAtom writes SMALL_ATOM_UTF8_EXT, or ATOM_UTF8_EXT for atoms over 255 bytes.
func appendAtom(dst []byte, s string) ([]byte, error) {
	n := len(s)
	if n > maxAtomBytes {
		return dst, ErrAtomTooLong
	}
	if !utf8.ValidString(s) {
		return dst, ErrInvalidUTF8
	}
	if n <= 255 {
		dst = append(dst, TagSmallAtomUTF8, byte(n))
		return append(dst, s...), nil
	}
	if utf8.RuneCountInString(s) > maxAtomRunes {
		return dst, ErrAtomTooLong
	}
	dst = append(dst, TagAtomUTF8, byte(n>>8), byte(n))
	return append(dst, s...), nil
}

// appendBinary writes BINARY_EXT; the caller has checked the length fits 32 bits.
func appendBinary[T string | []byte](dst []byte, b T) []byte {
	dst = append(dst, TagBinary)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendBitBinary(dst []byte, b BitBinary) ([]byte, error) {
	n := len(b.Bytes)
	switch {
	case n == 0 && (b.Bits == 0 || b.Bits == 8):
		return appendBinary(dst, b.Bytes), nil
	case n == 0 || b.Bits == 0 || b.Bits > 8:
		return dst, encodeError(b, ErrInvalidValue)
	case uint64(n) > math.MaxUint32:
		return dst, encodeError(b, ErrTooLarge)
	case b.Bits == 8:
		return appendBinary(dst, b.Bytes), nil
	}
	dst = append(dst, TagBitBinary)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, b.Bits)
	dst = append(dst, b.Bytes...)
	dst[len(dst)-1] &= byte(0xff << (8 - b.Bits))
	return dst, nil
}

// appendInt writes the smallest of SMALL_INTEGER_EXT, INTEGER_EXT and SMALL_BIG_EXT, as BEAM does.
func appendInt(dst []byte, x int64) []byte {
	if uint64(x) <= 255 {
		return append(dst, TagSmallInteger, byte(x))
	}
	if x >= math.MinInt32 && x <= math.MaxInt32 {
		return binary.BigEndian.AppendUint32(append(dst, TagInteger), uint32(x))
	}
	if x < 0 {
		return appendBig64(dst, 1, -uint64(x))
	}
	return appendBig64(dst, 0, uint64(x))
}

func appendUint(dst []byte, x uint64) []byte {
	if x <= math.MaxInt32 {
		return appendInt(dst, int64(x))
	}
	return appendBig64(dst, 0, x)
}

func appendBig64(dst []byte, sign byte, mag uint64) []byte {
	n := (bits.Len64(mag) + 7) / 8
	dst = append(dst, TagSmallBig, byte(n), sign)
	for i := 0; i < n; i++ {
		dst = append(dst, byte(mag>>(8*i)))
	}
	return dst
}

func appendBig(dst []byte, x *big.Int) ([]byte, error) {
	if x.IsInt64() {
		return appendInt(dst, x.Int64()), nil
	}
	var sign byte
	if x.Sign() < 0 {
		sign = 1
	}
	n := (x.BitLen() + 7) / 8
	switch {
	case n <= 255:
		dst = append(dst, TagSmallBig, byte(n), sign)
	case uint64(n) <= math.MaxUint32:
		dst = append(dst, TagLargeBig)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		dst = append(dst, sign)
	default:
		return dst, encodeError(x, ErrTooLarge)
	}
	const wordBytes = bits.UintSize / 8
	words := x.Bits()
	dst = slices.Grow(dst, n)
	for i := 0; i < n; i++ {
		dst = append(dst, byte(words[i/wordBytes]>>(8*(i%wordBytes))))
	}
	return dst, nil
}

func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, encodeError(f, ErrNonFinite)
	}
	return binary.BigEndian.AppendUint64(append(dst, TagNewFloat), math.Float64bits(f)), nil
}

// tooDeep reports whether a container at depth would nest deeper than maxDepth.
func (e encoder) tooDeep(depth int) bool { return depth+1 > e.maxDepth }

func (e encoder) tuple(dst []byte, t Tuple, depth int) ([]byte, error) {
	if e.tooDeep(depth) {
		return dst, encodeError(t, ErrTooDeep)
	}
	n := len(t)
	switch {
	case n <= 255:
		dst = append(dst, TagSmallTuple, byte(n))
	case uint64(n) <= math.MaxUint32:
		dst = binary.BigEndian.AppendUint32(append(dst, TagLargeTuple), uint32(n))
	default:
		return dst, encodeError(t, ErrTooLarge)
	}
	var err error
	for _, el := range t {
		if dst, err = e.term(dst, el, depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// list writes elems followed by tail (nil meaning []). Tails that are lists themselves are merged into
// one LIST_EXT, so every way of writing a list in Go encodes the same; an ImproperList with no
// elements is its tail.
func (e encoder) list(dst []byte, elems []any, tail any, depth int) ([]byte, error) {
	total := uint64(len(elems))
	end := tail
	for {
		switch t := end.(type) {
		case List:
			total += uint64(len(t))
			end = nil
			continue
		case []any:
			total += uint64(len(t))
			end = nil
			continue
		case ImproperList:
			total += uint64(len(t.Elems))
			end = t.Tail
			continue
		}
		break
	}
	if total == 0 {
		if end == nil {
			return append(dst, TagNil), nil
		}
		return e.term(dst, end, depth)
	}
	if e.tooDeep(depth) {
		return dst, encodeError(List(elems), ErrTooDeep)
	}
	if total > math.MaxUint32 {
		return dst, encodeError(List(elems), ErrTooLarge)
	}
	if end == nil && total <= math.MaxUint16 && allBytes(elems, tail) {
		dst = append(dst, TagString, byte(total>>8), byte(total))
		return appendByteElems(dst, elems, tail), nil
	}
	dst = binary.BigEndian.AppendUint32(append(dst, TagList), uint32(total))
	var err error
	seg, rest := elems, tail
	for {
		for _, el := range seg {
			if dst, err = e.term(dst, el, depth+1); err != nil {
				return dst, err
			}
		}
		switch t := rest.(type) {
		case List:
			seg, rest = t, nil
			continue
		case []any:
			seg, rest = t, nil
			continue
		case ImproperList:
			seg, rest = t.Elems, t.Tail
			continue
		}
		break
	}
	if end == nil {
		return append(dst, TagNil), nil
	}
	return e.term(dst, end, depth+1)
}

// forEachSegment calls f on elems and on the element slices of the list tails merged into them.
func forEachSegment(elems []any, tail any, f func([]any) bool) {
	for {
		if !f(elems) {
			return
		}
		switch t := tail.(type) {
		case List:
			elems, tail = t, nil
		case []any:
			elems, tail = t, nil
		case ImproperList:
			elems, tail = t.Elems, t.Tail
		default:
			return
		}
	}
}

func allBytes(elems []any, tail any) bool {
	ok := true
	forEachSegment(elems, tail, func(seg []any) bool {
		for _, el := range seg {
			if _, isByte := byteValue(el); !isByte {
				ok = false
				return false
			}
		}
		return true
	})
	return ok
}

func appendByteElems(dst []byte, elems []any, tail any) []byte {
	forEachSegment(elems, tail, func(seg []any) bool {
		for _, el := range seg {
			b, _ := byteValue(el)
			dst = append(dst, b)
		}
		return true
	})
	return dst
}

// byteValue reports whether v is an integer 0..255, the elements STRING_EXT can carry.
func byteValue(v any) (byte, bool) {
	var x int64
	switch n := v.(type) {
	case int64:
		x = n
	case int:
		x = int64(n)
	case int32:
		x = int64(n)
	case int16:
		x = int64(n)
	case int8:
		x = int64(n)
	case uint8:
		return n, true
	case uint16:
		x = int64(n)
	case uint32:
		x = int64(n)
	case uint64:
		if n > 255 {
			return 0, false
		}
		x = int64(n)
	case uint:
		if n > 255 {
			return 0, false
		}
		x = int64(n)
	case *big.Int:
		if n == nil || !n.IsInt64() {
			return 0, false
		}
		x = n.Int64()
	default:
		return 0, false
	}
	if x < 0 || x > 255 {
		return 0, false
	}
	return byte(x), true
}

func (e encoder) mapTerm(dst []byte, m Map, depth int) ([]byte, error) {
	if e.tooDeep(depth) {
		return dst, encodeError(m, ErrTooDeep)
	}
	if uint64(len(m)) > math.MaxUint32 {
		return dst, encodeError(m, ErrTooLarge)
	}
	dst = binary.BigEndian.AppendUint32(append(dst, TagMap), uint32(len(m)))
	var err error
	if !e.canonical || len(m) < 2 {
		for _, en := range m {
			if dst, err = e.term(dst, en.Key, depth+1); err != nil {
				return dst, err
			}
			if dst, err = e.term(dst, en.Value, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	keys := make([][]byte, len(m))
	order := make([]int, len(m))
	for i, en := range m {
		if keys[i], err = e.term(nil, en.Key, depth+1); err != nil {
			return dst, err
		}
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	for _, i := range order {
		dst = append(dst, keys[i]...)
		if dst, err = e.term(dst, m[i].Value, depth+1); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func appendPid(dst []byte, p Pid) ([]byte, error) {
	dst = append(dst, TagNewPid)
	dst, err := appendAtom(dst, string(p.Node))
	if err != nil {
		return dst, encodeError(p, err)
	}
	dst = binary.BigEndian.AppendUint32(dst, p.ID)
	dst = binary.BigEndian.AppendUint32(dst, p.Serial)
	return binary.BigEndian.AppendUint32(dst, p.Creation), nil
}

func appendRef(dst []byte, r Ref) ([]byte, error) {
	if r.Len == 0 || r.Len > maxRefWords {
		return dst, encodeError(r, ErrInvalidValue)
	}
	dst = append(dst, TagNewerRef, 0, r.Len)
	dst, err := appendAtom(dst, string(r.Node))
	if err != nil {
		return dst, encodeError(r, err)
	}
	dst = binary.BigEndian.AppendUint32(dst, r.Creation)
	for _, w := range r.ID[:r.Len] {
		dst = binary.BigEndian.AppendUint32(dst, w)
	}
	return dst, nil
}

func appendPort(dst []byte, p Port) ([]byte, error) {
	dst = append(dst, TagV4Port)
	dst, err := appendAtom(dst, string(p.Node))
	if err != nil {
		return dst, encodeError(p, err)
	}
	dst = binary.BigEndian.AppendUint64(dst, p.ID)
	return binary.BigEndian.AppendUint32(dst, p.Creation), nil
}

func appendExport(dst []byte, x Export) ([]byte, error) {
	dst = append(dst, TagExport)
	dst, err := appendAtom(dst, string(x.Module))
	if err != nil {
		return dst, encodeError(x, err)
	}
	if dst, err = appendAtom(dst, string(x.Function)); err != nil {
		return dst, encodeError(x, err)
	}
	return append(dst, TagSmallInteger, x.Arity), nil
}

func (e encoder) fun(dst []byte, f Fun, depth int) ([]byte, error) {
	if e.tooDeep(depth) {
		return dst, encodeError(f, ErrTooDeep)
	}
	if uint64(len(f.Free)) > math.MaxUint32 {
		return dst, encodeError(f, ErrTooLarge)
	}
	var err error
	sizeAt := -1
	if f.Old {
		dst = binary.BigEndian.AppendUint32(append(dst, TagFun), uint32(len(f.Free)))
		if dst, err = appendPid(dst, f.Pid); err != nil {
			return dst, err
		}
		if dst, err = appendAtom(dst, string(f.Module)); err != nil {
			return dst, encodeError(f, err)
		}
		dst = appendInt(dst, int64(f.OldIndex))
		dst = appendInt(dst, int64(f.OldUniq))
	} else {
		dst = append(dst, TagNewFun)
		sizeAt = len(dst)
		dst = append(dst, 0, 0, 0, 0, f.Arity)
		dst = append(dst, f.Uniq[:]...)
		dst = binary.BigEndian.AppendUint32(dst, f.Index)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Free)))
		if dst, err = appendAtom(dst, string(f.Module)); err != nil {
			return dst, encodeError(f, err)
		}
		dst = appendInt(dst, int64(f.OldIndex))
		dst = appendInt(dst, int64(f.OldUniq))
		if dst, err = appendPid(dst, f.Pid); err != nil {
			return dst, err
		}
	}
	for _, v := range f.Free {
		if dst, err = e.term(dst, v, depth+1); err != nil {
			return dst, err
		}
	}
	if sizeAt >= 0 {
		// Size counts every byte from the Size field to the end of the free variables.
		size := uint64(len(dst) - sizeAt)
		if size > math.MaxUint32 {
			return dst, encodeError(f, ErrTooLarge)
		}
		binary.BigEndian.PutUint32(dst[sizeAt:], uint32(size))
	}
	return dst, nil
}
