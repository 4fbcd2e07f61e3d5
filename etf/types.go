package etf

// Atom is an Erlang atom. It is encoded as SMALL_ATOM_UTF8_EXT (ATOM_UTF8_EXT when longer than 255
// bytes); it must be valid UTF-8 of at most 255 characters. A Go string is never an atom: it is a
// binary.
type Atom string

// Tuple is an Erlang tuple. SMALL_TUPLE_EXT up to 255 elements, LARGE_TUPLE_EXT above.
type Tuple []any

// List is a proper Erlang list. A nil or empty List is [] (NIL_EXT); the decoder returns List(nil)
// for []. A List whose elements are all integers 0..255, with at most 65535 of them, is encoded as
// STRING_EXT, as term_to_binary does; it decodes back to a List of int64.
type List []any

// ImproperList is a list whose tail is not []: [E1, E2 | Tail]. Elems must not be empty. A Tail that
// is itself a List or an ImproperList is merged, so ImproperList{Elems: {1}, Tail: List{2}} is the
// proper list [1, 2]; the decoder always returns that merged form.
type ImproperList struct {
	Elems []any
	Tail  any
}

// MapEntry is one key-value pair of a Map.
type MapEntry struct {
	Key, Value any
}

// Map is an Erlang map, as an ordered slice of entries so that keys may be any term, including ones Go
// cannot compare (lists, maps, binaries). The encoder writes the entries in slice order; the decoder
// returns them in wire order, which is BEAM's internal order and carries no meaning. Keys must be
// distinct as Erlang terms: the decoder refuses duplicates (ErrDuplicateKey), as BEAM does, and an
// encoded Map with duplicate keys is refused by binary_to_term. Use Equal to compare maps regardless of
// order, and Map.Get to look up a key.
type Map []MapEntry

// Get returns the value of the entry whose key equals key as an Erlang term (see Equal).
func (m Map) Get(key any) (any, bool) {
	for _, e := range m {
		if Equal(e.Key, key) {
			return e.Value, true
		}
	}
	return nil, false
}

// Pid is an Erlang process identifier (NEW_PID_EXT). ID and Serial are the two 32-bit words of the
// external format: a local pid <0.ID.Serial> of node Node. Creation tells incarnations of a node apart.
type Pid struct {
	Node     Atom
	ID       uint32
	Serial   uint32
	Creation uint32
}

// Ref is an Erlang reference (NEWER_REFERENCE_EXT). Len is the number of ID words in use (1..5; refs
// from make_ref/0 have 3, OTP 26 pid-refs and aliases 5); ID[i] is the i-th word on the wire, so the
// reference printed #Ref<0.A.B.C> has ID[0] = C, ID[1] = B, ID[2] = A. Words past Len are zero in
// decoded refs. Ref is comparable, so it can key a Go map.
type Ref struct {
	Node     Atom
	Creation uint32
	Len      uint8
	ID       [maxRefWords]uint32
}

// Words returns the ID words in use.
func (r *Ref) Words() []uint32 {
	n := int(r.Len)
	if n > maxRefWords {
		n = maxRefWords
	}
	return r.ID[:n]
}

// Port is an Erlang port identifier (V4_PORT_EXT).
type Port struct {
	Node     Atom
	ID       uint64
	Creation uint32
}

// BitBinary is a bitstring whose length in bits is not a multiple of 8 (BIT_BINARY_EXT). Bits is the
// number of bits used in the last byte of Bytes, 1..8, counted from the most significant bit; the
// unused low bits are written as zero. Bits 8 is a whole binary and is encoded as BINARY_EXT; the decoder
// returns whole binaries as []byte, so a decoded BitBinary always has Bits 1..7 and a non-empty Bytes.
// An empty BitBinary with Bits 0 is the empty binary.
type BitBinary struct {
	Bytes []byte
	Bits  uint8
}

// Export is an external fun, fun Module:Function/Arity (EXPORT_EXT).
type Export struct {
	Module   Atom
	Function Atom
	Arity    uint8
}

// Fun is a local fun received from a BEAM node (NEW_FUN_EXT, or the FUN_EXT of releases before R8). It
// is opaque: Go cannot call it, but the decoder keeps every field so that encoding it sends the same fun
// back. Old marks the removed FUN_EXT form, which has no Arity and no Uniq; its Index and Uniq fields
// are stored in OldIndex and OldUniq.
type Fun struct {
	Old      bool
	Module   Atom
	Arity    uint8
	Uniq     [16]byte
	Index    uint32
	OldIndex int32
	OldUniq  int32
	Pid      Pid
	Free     []any
}
