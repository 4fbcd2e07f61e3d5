package etf

import (
	"encoding/binary"
	"hash/maphash"
	"io"
	"math"
	"math/big"
	"math/bits"
	"strconv"

	"ergo.services/ergo/gen"
)

// AtomCache resolves ATOM_CACHE_REF (tag 82): element i is the atom of AtomCacheReferenceIndex i in the
// distribution header that precedes the term. The distribution layer fills it per message from its
// connection's cache; the decoder only reads it. Without a cache, ATOM_CACHE_REF is refused.
type AtomCache []Atom

// Decoder decodes terms under a set of Limits. It holds no mutable state after NewDecoder: one Decoder
// may be used by any number of goroutines at once.
type Decoder struct {
	limits Limits
	ergo   bool
}

// Option configures a Decoder.
type Option func(*Decoder)

// WithErgoTypes makes the decoder return gen.Atom, gen.PID and gen.Ref (see ergo.go for the mapping)
// where it would return Atom, Pid and Ref. Atoms that are parts of other terms (the node of a Port, the
// module of a Fun) keep their etf types.
func WithErgoTypes() Option { return func(d *Decoder) { d.ergo = true } }

// NewDecoder returns a Decoder with the given limits; zero fields take their defaults.
func NewDecoder(l Limits, opts ...Option) *Decoder {
	d := &Decoder{limits: l.withDefaults()}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Limits returns the limits in force, defaults filled in.
func (d *Decoder) Limits() Limits { return d.limits }

// Unmarshal decodes one term from data, which must start with the version byte 131 and hold nothing
// after the term, under DefaultLimits. See doc.go for the Go types it returns.
func Unmarshal(data []byte) (any, error) {
	d := Decoder{limits: DefaultLimits()}
	return d.Unmarshal(data)
}

// Unmarshal decodes one term from data, which must start with the version byte 131 and hold nothing
// after the term. Empty data gives io.EOF; data that ends inside the term gives an error wrapping
// io.ErrUnexpectedEOF.
func (d *Decoder) Unmarshal(data []byte) (any, error) {
	if len(data) == 0 {
		return nil, io.EOF
	}
	if len(data) > d.limits.MaxInputSize {
		return nil, &DecodeError{Offset: 0, Tag: data[0], Err: ErrInputTooLarge}
	}
	if data[0] != TagVersion {
		return nil, &DecodeError{Offset: 0, Tag: data[0], Err: ErrVersion}
	}
	s := decodeState{data: data, lim: d.limits, ergo: d.ergo}
	v, next, err := s.top(1)
	if err != nil {
		return nil, err
	}
	if next != len(data) {
		return nil, &DecodeError{Offset: next, Tag: data[next], Err: ErrTrailingData}
	}
	return v, nil
}

// DecodeTerm decodes the term at the start of data, which has no version byte (the form terms take
// after a distribution header), and returns it with the number of bytes it used; data may hold more
// terms after it. atoms resolves ATOM_CACHE_REF and may be nil. Empty data gives io.EOF; data that ends
// inside the term gives an error wrapping io.ErrUnexpectedEOF. A compressed term (tag 80) is accepted
// here too.
func (d *Decoder) DecodeTerm(data []byte, atoms AtomCache) (any, int, error) {
	if len(data) == 0 {
		return nil, 0, io.EOF
	}
	if len(data) > d.limits.MaxInputSize {
		return nil, 0, &DecodeError{Offset: 0, Tag: data[0], Err: ErrInputTooLarge}
	}
	s := decodeState{data: data, lim: d.limits, atoms: atoms, ergo: d.ergo}
	v, next, err := s.top(0)
	if err != nil {
		return nil, 0, err
	}
	return v, next, nil
}

// decodeState is the state of one decode call; it lives on the caller's stack.
type decodeState struct {
	data     []byte
	lim      Limits
	atoms    AtomCache
	ergo     bool
	inflated bool
	seeded   bool
	seed     maphash.Seed
}

func (s *decodeState) fail(off int, err error) error {
	var tag byte
	if off < len(s.data) {
		tag = s.data[off]
	}
	return &DecodeError{Offset: off, Tag: tag, InCompressed: s.inflated, Err: err}
}

// eof reports input that ends inside the term that starts at off.
func (s *decodeState) eof(off int) error { return s.fail(off, io.ErrUnexpectedEOF) }

// need reports whether n bytes are left at pos; n may be any non-negative count read from the input.
// length reads a length field at p: one byte for the small form of a tag, else four bytes big
// endian. It returns the length, the position after it, and false if the field is cut short.
func (s *decodeState) length(p int, small bool) (uint64, int, bool) {
	if small {
		if !s.need(p, 1) {
			return 0, p, false
		}
		return uint64(s.data[p]), p + 1, true
	}
	if !s.need(p, 4) {
		return 0, p, false
	}
	return uint64(binary.BigEndian.Uint32(s.data[p:])), p + 4, true
}

func (s *decodeState) need(pos int, n uint64) bool {
	return uint64(len(s.data)-pos) >= n
}

// top decodes the outermost term at pos, where a compressed term may stand.
func (s *decodeState) top(pos int) (any, int, error) {
	if pos >= len(s.data) {
		return nil, pos, s.eof(pos)
	}
	if s.data[pos] != TagCompressed {
		v, _, next, err := s.term(pos, 0, false)
		return v, next, err
	}
	if !s.need(pos, 5) {
		return nil, pos, s.eof(pos)
	}
	size := binary.BigEndian.Uint32(s.data[pos+1:])
	inflated, used, err := inflate(s.data[pos+5:], uint64(size), s.lim.MaxDecompressedSize)
	if err != nil {
		return nil, pos, s.fail(pos, err)
	}
	inner := decodeState{data: inflated, lim: s.lim, atoms: s.atoms, ergo: s.ergo, inflated: true}
	if inflated[0] == TagCompressed {
		return nil, pos, inner.fail(0, ErrUnknownTag)
	}
	v, _, next, err := inner.term(0, 0, false)
	if err != nil {
		if isEOF(err) {
			// The size field promised these bytes and zlib delivered them: the term inside is cut.
			return nil, pos, s.fail(pos, ErrCompressed)
		}
		return nil, pos, err
	}
	if next != len(inflated) {
		return nil, pos, inner.fail(next, ErrTrailingData)
	}
	return v, pos + 5 + used, nil
}

// term decodes the term at pos. depth counts the containers around it. When wantHash is set it also
// returns the term's hash (see hash.go), which map key checks need.
func (s *decodeState) term(pos, depth int, wantHash bool) (v any, h uint64, next int, err error) {
	if pos >= len(s.data) {
		return nil, 0, pos, s.eof(pos)
	}
	tag := s.data[pos]
	p := pos + 1
	switch tag {
	case TagSmallInteger:
		if !s.need(p, 1) {
			return nil, 0, pos, s.eof(pos)
		}
		x := int64(s.data[p])
		if wantHash {
			h = s.hashInt(x)
		}
		return x, h, p + 1, nil

	case TagInteger:
		if !s.need(p, 4) {
			return nil, 0, pos, s.eof(pos)
		}
		x := int64(int32(binary.BigEndian.Uint32(s.data[p:])))
		if wantHash {
			h = s.hashInt(x)
		}
		return x, h, p + 4, nil

	case TagSmallBig, TagLargeBig:
		var n uint64
		var ok bool
		n, p, ok = s.length(p, tag == TagSmallBig)
		if !ok {
			return nil, 0, pos, s.eof(pos)
		}
		if n > uint64(s.lim.MaxBigIntBytes) {
			return nil, 0, pos, s.fail(pos, ErrBigIntTooLarge)
		}
		if !s.need(p, 1+n) {
			return nil, 0, pos, s.eof(pos)
		}
		sign := s.data[p]
		if sign > 1 {
			return nil, 0, pos, s.fail(pos, ErrInvalid)
		}
		digits := s.data[p+1 : p+1+int(n)]
		v = bigFromDigits(digits, sign == 1)
		if wantHash {
			h = s.hashNumber(v)
		}
		return v, h, p + 1 + int(n), nil

	case TagNewFloat:
		if !s.need(p, 8) {
			return nil, 0, pos, s.eof(pos)
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(s.data[p:]))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, 0, pos, s.fail(pos, ErrNonFinite)
		}
		if wantHash {
			h = s.hashFloat(f)
		}
		return f, h, p + 8, nil

	case TagFloat:
		if !s.need(p, 31) {
			return nil, 0, pos, s.eof(pos)
		}
		f, ferr := parseOldFloat(s.data[p : p+31])
		if ferr != nil {
			return nil, 0, pos, s.fail(pos, ferr)
		}
		if wantHash {
			h = s.hashFloat(f)
		}
		return f, h, p + 31, nil

	case TagAtom, TagSmallAtom, TagAtomUTF8, TagSmallAtomUTF8, TagAtomCacheRef:
		a, next, err := s.atom(pos)
		if err != nil {
			return nil, 0, pos, err
		}
		if wantHash {
			h = s.hashAtom(a)
		}
		if s.ergo {
			return gen.Atom(a), h, next, nil
		}
		return a, h, next, nil

	case TagBinary:
		if !s.need(p, 4) {
			return nil, 0, pos, s.eof(pos)
		}
		n := uint64(binary.BigEndian.Uint32(s.data[p:]))
		p += 4
		if !s.need(p, n) {
			return nil, 0, pos, s.eof(pos)
		}
		b := make([]byte, n)
		copy(b, s.data[p:])
		if wantHash {
			h = s.hashBytes(kindBinary, b)
		}
		return b, h, p + int(n), nil

	case TagBitBinary:
		if !s.need(p, 5) {
			return nil, 0, pos, s.eof(pos)
		}
		n := uint64(binary.BigEndian.Uint32(s.data[p:]))
		nbits := s.data[p+4]
		p += 5
		if (nbits == 0) != (n == 0) || nbits > 8 {
			return nil, 0, pos, s.fail(pos, ErrInvalid)
		}
		if !s.need(p, n) {
			return nil, 0, pos, s.eof(pos)
		}
		b := make([]byte, n)
		copy(b, s.data[p:])
		next := p + int(n)
		if n == 0 || nbits == 8 {
			if wantHash {
				h = s.hashBytes(kindBinary, b)
			}
			return b, h, next, nil
		}
		b[n-1] &= byte(0xff << (8 - nbits))
		if wantHash {
			h = mix(s.hashBytes(kindBitBinary, b), uint64(nbits))
		}
		return BitBinary{Bytes: b, Bits: nbits}, h, next, nil

	case TagSmallTuple, TagLargeTuple:
		var n uint64
		var ok bool
		n, p, ok = s.length(p, tag == TagSmallTuple)
		if !ok {
			return nil, 0, pos, s.eof(pos)
		}
		if depth+1 > s.lim.MaxDepth {
			return nil, 0, pos, s.fail(pos, ErrTooDeep)
		}
		if !s.need(p, n) {
			return nil, 0, pos, s.eof(pos)
		}
		t := make(Tuple, n)
		if wantHash {
			h = kindTuple
		}
		for i := range t {
			var eh uint64
			if t[i], eh, p, err = s.term(p, depth+1, wantHash); err != nil {
				return nil, 0, pos, err
			}
			if wantHash {
				h = mix(h, eh)
			}
		}
		return t, h, p, nil

	case TagNil:
		return List(nil), hashNil, p, nil

	case TagString:
		if !s.need(p, 2) {
			return nil, 0, pos, s.eof(pos)
		}
		n := uint64(binary.BigEndian.Uint16(s.data[p:]))
		p += 2
		if n == 0 {
			return List(nil), hashNil, p, nil
		}
		if depth+1 > s.lim.MaxDepth {
			return nil, 0, pos, s.fail(pos, ErrTooDeep)
		}
		if !s.need(p, n) {
			return nil, 0, pos, s.eof(pos)
		}
		l := make(List, n)
		var hl listHasher
		for i, b := range s.data[p : p+int(n)] {
			l[i] = int64(b)
			if wantHash {
				hl.add(s.hashInt(int64(b)))
			}
		}
		if wantHash {
			h = hl.end(hashNil)
		}
		return l, h, p + int(n), nil

	case TagList:
		return s.list(pos, depth, wantHash)

	case TagMap:
		return s.mapTerm(pos, depth, wantHash)

	case TagPid, TagNewPid:
		pid, next, err := s.pid(pos)
		if err != nil {
			return nil, 0, pos, err
		}
		if wantHash {
			h = s.hashPid(pid)
		}
		if s.ergo {
			return pid.Gen(), h, next, nil
		}
		return pid, h, next, nil

	case TagPort, TagNewPort, TagV4Port:
		port, next, err := s.port(pos)
		if err != nil {
			return nil, 0, pos, err
		}
		if wantHash {
			h = mix(mix(mix(kindPort, s.hashString(string(port.Node))), port.ID), uint64(port.Creation))
		}
		return port, h, next, nil

	case TagReference, TagNewReference, TagNewerRef:
		ref, next, err := s.ref(pos)
		if err != nil {
			return nil, 0, pos, err
		}
		if wantHash {
			h = s.hashRef(ref)
		}
		if s.ergo {
			return ref.Gen(), h, next, nil
		}
		return ref, h, next, nil

	case TagExport:
		x, next, err := s.export(pos)
		if err != nil {
			return nil, 0, pos, err
		}
		if wantHash {
			h = mix(mix(mix(kindExport, s.hashString(string(x.Module))), s.hashString(string(x.Function))), uint64(x.Arity))
		}
		return x, h, next, nil

	case TagNewFun, TagFun:
		return s.fun(pos, depth, wantHash)

	case TagLocal:
		return nil, 0, pos, s.fail(pos, ErrLocalExt)
	}
	return nil, 0, pos, s.fail(pos, ErrUnknownTag)
}

// bigFromDigits turns little-endian magnitude digits into an int64 when the value fits, else a *big.Int.
func bigFromDigits(d []byte, neg bool) any {
	if x, ok := int64FromDigits(d, neg); ok {
		return x
	}
	n := len(d)
	for n > 0 && d[n-1] == 0 {
		n--
	}
	d = d[:n]
	const wordBytes = bits.UintSize / 8
	words := make([]big.Word, (n+wordBytes-1)/wordBytes)
	for i, c := range d {
		words[i/wordBytes] |= big.Word(c) << (8 * (i % wordBytes))
	}
	z := new(big.Int).SetBits(words)
	if neg {
		z.Neg(z)
	}
	return z
}

// int64FromDigits returns the value of little-endian magnitude digits if it fits an int64.
func int64FromDigits(d []byte, neg bool) (int64, bool) {
	n := len(d)
	for n > 0 && d[n-1] == 0 {
		n--
	}
	if n > 8 {
		return 0, false
	}
	var mag uint64
	for i := n - 1; i >= 0; i-- {
		mag = mag<<8 | uint64(d[i])
	}
	if !neg && mag <= math.MaxInt64 {
		return int64(mag), true
	}
	if neg && mag <= 1<<63 {
		return -int64(mag), true // for 1<<63 this wraps to MinInt64, the value wanted
	}
	return 0, false
}

// parseOldFloat reads FLOAT_EXT's 31 bytes of "%.20e" text, NUL-padded.
func parseOldFloat(b []byte) (float64, error) {
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	for n > 0 && b[n-1] == ' ' {
		n--
	}
	start := 0
	for start < n && b[start] == ' ' {
		start++
	}
	f, err := strconv.ParseFloat(string(b[start:n]), 64)
	if err != nil {
		if math.IsInf(f, 0) {
			return 0, ErrNonFinite
		}
		return 0, ErrInvalid
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, ErrNonFinite
	}
	return f, nil
}

func isEOF(err error) bool {
	de, ok := err.(*DecodeError)
	return ok && de.Err == io.ErrUnexpectedEOF
}
