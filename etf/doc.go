// Package etf is Pharos Node's codec for the Erlang External Term Format, the bytes of
// term_to_binary/1 and of Erlang distribution messages, and for the Pharos records of docs/wire.md.
//
// The format is specified by OTP's "External Term Format" page,
// https://www.erlang.org/doc/apps/erts/erl_ext_dist.html (erts/doc/guides/erl_ext_dist.md in the OTP
// source); tags.go names every tag, and the table below says what this package does with each.
//
// # Use
//
// The hot path, a record sent as a payload binary, appends into a buffer the caller reuses:
//
//	buf, err := etf.AppendMetric(buf[:0], &m) // term_to_binary(Metric), 131 first; no allocation
//
// General values, for the Ergo bridge and the distribution layer:
//
//	b, err := etf.Marshal(etf.Tuple{etf.Atom("ok"), int64(42)})    // with the version byte 131
//	b, err = etf.AppendTerm(b[:0], v)                               // without it, as after a dist header
//	v, err := etf.Unmarshal(b)                                      // with 131, DefaultLimits, nothing after
//	d := etf.NewDecoder(etf.Limits{MaxInputSize: 1 << 20})
//	ctrl, n, err := d.DecodeTerm(frame, atoms)                      // one term, no 131; n bytes used
//	msg, m, err := d.DecodeTerm(frame[n:], atoms)                   // the payload after it
//
// The reference side reads records back with DecodeMetric and DecodeAlert, and Metric.Validate and
// Alert.Validate check a record when it enters the node.
//
// # Go values and terms
//
// Encoding is a type switch (no reflection). Decoding returns one fixed Go type per kind of term, so
// that equal terms decode to equal values whatever encoding carried them:
//
//	Erlang term            Go, encoding (accepted)                    Go, decoded
//	integer                int, int8..int64, uint..uint64, *big.Int   int64 if it fits, else *big.Int
//	float                  float64, float32 (finite only)             float64
//	atom                   Atom, gen.Atom, bool (true/false)          Atom (gen.Atom with WithErgoTypes)
//	binary                 []byte, string, BitBinary with Bits 8      []byte (never nil)
//	bitstring              BitBinary                                  BitBinary (Bits 1..7)
//	tuple                  Tuple                                      Tuple (never nil)
//	[]                     List(nil), List{}, []any{}                 List(nil)
//	proper list            List, []any                                List
//	improper list          ImproperList                               ImproperList
//	charlist (STRING_EXT)  List of integers 0..255, up to 65535       List of int64
//	map                    Map ([]MapEntry, any keys, given order)    Map (wire order)
//	pid                    Pid, gen.PID                               Pid (gen.PID with WithErgoTypes)
//	reference              Ref, gen.Ref, gen.Alias                    Ref (gen.Ref with WithErgoTypes)
//	port                   Port                                       Port
//	fun M:F/A              Export                                     Export
//	local fun              Fun (as decoded)                           Fun, opaque
//
// Any other Go type, and a nil interface, gives ErrUnsupportedType. A Go string is always a binary, never
// an atom: records never grow a Brain's atom table. Booleans decode as the atoms true and false. Use
// Equal to compare terms as Erlang does (int64 vs *big.Int, map order, string vs []byte).
//
// # Tags
//
//	tag  name                  encode                               decode
//	 70  NEW_FLOAT_EXT         every float                          yes; NaN/inf refused (ErrNonFinite)
//	 77  BIT_BINARY_EXT        BitBinary, Bits 1..7                 yes (Bits 8 gives []byte)
//	 80  compressed (zlib)     no                                   yes, as the outermost term only
//	 82  ATOM_CACHE_REF        no                                   only with an AtomCache (DecodeTerm)
//	 88  NEW_PID_EXT           every pid                            yes
//	 89  NEW_PORT_EXT          no                                   yes (OTP 25 term_to_binary writes it)
//	 90  NEWER_REFERENCE_EXT   every reference                      yes, 1..5 words
//	 97  SMALL_INTEGER_EXT     0..255                               yes
//	 98  INTEGER_EXT           other 32-bit values                  yes
//	 99  FLOAT_EXT             no                                   yes ({minor_version, 0})
//	100  ATOM_EXT              no                                   yes, Latin-1 (OTP 25's default)
//	101  REFERENCE_EXT         no                                   yes
//	102  PORT_EXT              no                                   yes
//	103  PID_EXT               no                                   yes
//	104  SMALL_TUPLE_EXT       tuples up to 255 elements            yes
//	105  LARGE_TUPLE_EXT       larger tuples                        yes
//	106  NIL_EXT               []                                   yes
//	107  STRING_EXT            byte lists up to 65535               yes
//	108  LIST_EXT              other lists                          yes; a list tail is merged
//	109  BINARY_EXT            binaries                             yes
//	110  SMALL_BIG_EXT         integers beyond 32 bits              yes
//	111  LARGE_BIG_EXT         integers over 255 bytes              yes
//	112  NEW_FUN_EXT           Fun                                  yes, opaque Fun
//	113  EXPORT_EXT            Export                               yes
//	114  NEW_REFERENCE_EXT     no                                   yes
//	115  SMALL_ATOM_EXT        no                                   yes, Latin-1
//	116  MAP_EXT               Map                                  yes; duplicate keys refused
//	117  FUN_EXT               Fun with Old set                     yes, opaque Fun (Old set)
//	118  ATOM_UTF8_EXT         atoms over 255 bytes                 yes
//	119  SMALL_ATOM_UTF8_EXT   other atoms                          yes
//	120  V4_PORT_EXT           every port                           yes
//	121  LOCAL_EXT             no                                   refused (ErrLocalExt)
//
// The encoder makes the choices OTP 26 and later make by default (minor version 2: UTF-8 atoms,
// NEW_FLOAT_EXT, V4_PORT_EXT), so Marshal's bytes are those of term_to_binary(T, [{minor_version, 2}])
// except for the order of map entries, which is the Map's (BEAM orders them its own way) and, on OTP 25,
// ports (written there as NEW_PORT_EXT). TestInteropEncode checks this byte for byte. Every release
// from OTP 24 on decodes all of them.
//
// Like BEAM, the decoder checks what binary_to_term checks: atoms of at most 255 characters, valid
// UTF-8 in UTF-8 atoms, creation of at most 2 bits in PID_EXT, PORT_EXT and the old references, 18 bits
// in the first word of the old references, 1..5 reference words, bit counts 1..8 (0 only for an empty
// bitstring), a bignum sign of 0 or 1, distinct map keys, finite floats.
//
// # Limits
//
// Limits bound each decode call: MaxInputSize, MaxDepth, MaxBigIntBytes and MaxDecompressedSize (see
// Limits for defaults). A violation is an error wrapping ErrLimit. Independently of them, no length field
// is trusted: a count of elements, bytes or digits is checked against the bytes left before anything is
// allocated, and a compressed term's size against MaxDecompressedSize and the 1032:1 ratio zlib cannot
// exceed. Memory used by a decode is therefore proportional to its input: every element takes at least
// one input byte and costs at most an interface slot and a small boxed value, some 20 bytes per input
// byte at worst (TestAllocationProportional measures it), so MaxInputSize and MaxDecompressedSize bound
// memory too: with the 16 MiB defaults, one hostile input costs at most a few hundred MiB; lower them for
// a peer that only sends small terms. Map key uniqueness is checked in time linear in
// the input (hash.go), and nesting is bounded by MaxDepth before any recursion. Bad input never panics.
//
// # Errors
//
// Decoding errors are *DecodeError{Offset, Tag, InCompressed, Err}; Err is a sentinel (ErrInvalid,
// ErrUnknownTag, ErrLimit and its refinements, ...) or io.ErrUnexpectedEOF. The truncation contract: an
// empty input gives io.EOF (no term started), and every other prefix of a valid term gives an error that
// errors.Is io.ErrUnexpectedEOF. A length field that claims more bytes than are left counts as
// truncation. Encoding errors are *EncodeError{Type, Err}; record errors are *ValidationError{Record,
// Field, Err}.
//
// # Ergo
//
// gen.Atom, gen.PID, gen.Ref and gen.Alias of ergo.services/ergo v3 encode directly, and a Decoder made
// with WithErgoTypes returns gen types; ergo.go documents how their fields map onto the wire (a gen.PID's
// uint64 ID is the ID word in its low 32 bits and the Serial word in its high 32 bits).
//
// # Concurrency
//
// Marshal, AppendTerm, Unmarshal, the record functions and Equal keep no state between calls and may be
// called from any number of goroutines. A Decoder is immutable once made, so one Decoder may serve many
// goroutines. A value must not be modified while it is being encoded. Decoded values share no memory with
// the input: binaries and strings are copied, so the caller may reuse its buffer at once.
package etf
