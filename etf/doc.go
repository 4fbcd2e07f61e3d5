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
// Encoding is a type switch (no reflection); decoding returns one fixed Go type per kind of term
// (int64 or *big.Int, float64, Atom, []byte, Tuple, List, Map, Pid, Ref, ...), so equal terms
// decode to equal values. A Go string is always a binary, never an atom. docs/etf.md has the
// table.
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
// The encoder writes what term_to_binary(T, [{minor_version, 2}]) writes (TestInteropEncode
// checks it byte for byte); the decoder checks what binary_to_term checks (docs/etf.md).
//
// # Limits
//
// Limits bound each decode call (MaxInputSize, MaxDepth, MaxBigIntBytes, MaxDecompressedSize);
// a violation wraps ErrLimit. No length field is trusted before the bytes are there, so memory is
// proportional to the input; bad input never panics (docs/etf.md).
//
// # Errors
//
// Decoding errors are *DecodeError{Offset, Tag, InCompressed, Err}; an empty input gives io.EOF,
// every other prefix of a valid term an error that errors.Is io.ErrUnexpectedEOF. Encoding errors
// are *EncodeError, record errors *ValidationError, acknowledgement errors *AckError.
//
// # Ergo
//
// gen.Atom, gen.PID, gen.Ref and gen.Alias encode directly; a Decoder made WithErgoTypes returns
// gen types (ergo.go documents the mapping).
//
// # Concurrency
//
// Marshal, AppendTerm, Unmarshal, the record functions and Equal keep no state between calls and may be
// called from any number of goroutines. A Decoder is immutable once made, so one Decoder may serve many
// goroutines. A value must not be modified while it is being encoded. Decoded values share no memory with
// the input: binaries and strings are copied, so the caller may reuse its buffer at once.
package etf
