package etf

// The tags of the external term format, as named in erl_ext_dist
// (https://www.erlang.org/doc/apps/erts/erl_ext_dist.html). The table in doc.go says which of them this
// package encodes and which it decodes; both change together with this list.
const (
	TagVersion = 131 // the version byte that starts a term_to_binary result

	TagNewFloat      = 70  // NEW_FLOAT_EXT: 8-byte IEEE 754 big-endian
	TagBitBinary     = 77  // BIT_BINARY_EXT: Len:32, Bits:8, Data
	TagCompressed    = 80  // zlib-compressed term: UncompressedSize:32, zlib data
	TagAtomCacheRef  = 82  // ATOM_CACHE_REF: index into the distribution header's atom references
	TagNewPid        = 88  // NEW_PID_EXT: Node, ID:32, Serial:32, Creation:32
	TagNewPort       = 89  // NEW_PORT_EXT: Node, ID:32, Creation:32
	TagNewerRef      = 90  // NEWER_REFERENCE_EXT: Len:16, Node, Creation:32, ID:32*Len
	TagSmallInteger  = 97  // SMALL_INTEGER_EXT: unsigned 8-bit
	TagInteger       = 98  // INTEGER_EXT: signed 32-bit big-endian
	TagFloat         = 99  // FLOAT_EXT: 31 bytes of "%.20e" text (minor version 0)
	TagAtom          = 100 // ATOM_EXT: Len:16, Latin-1 (deprecated, still term_to_binary's default before OTP 26)
	TagReference     = 101 // REFERENCE_EXT: Node, ID:32, Creation:8 (deprecated)
	TagPort          = 102 // PORT_EXT: Node, ID:32, Creation:8
	TagPid           = 103 // PID_EXT: Node, ID:32, Serial:32, Creation:8
	TagSmallTuple    = 104 // SMALL_TUPLE_EXT: Arity:8, Elements
	TagLargeTuple    = 105 // LARGE_TUPLE_EXT: Arity:32, Elements
	TagNil           = 106 // NIL_EXT: []
	TagString        = 107 // STRING_EXT: Len:16, bytes (a list of small integers)
	TagList          = 108 // LIST_EXT: Len:32, Elements, Tail
	TagBinary        = 109 // BINARY_EXT: Len:32, Data
	TagSmallBig      = 110 // SMALL_BIG_EXT: n:8, Sign:8, digits little-endian
	TagLargeBig      = 111 // LARGE_BIG_EXT: n:32, Sign:8, digits little-endian
	TagNewFun        = 112 // NEW_FUN_EXT
	TagExport        = 113 // EXPORT_EXT: Module, Function, Arity
	TagNewReference  = 114 // NEW_REFERENCE_EXT: Len:16, Node, Creation:8, ID:32*Len
	TagSmallAtom     = 115 // SMALL_ATOM_EXT: Len:8, Latin-1 (deprecated)
	TagMap           = 116 // MAP_EXT: Arity:32, K1, V1, ...
	TagFun           = 117 // FUN_EXT (removed from OTP, decoded here as an opaque Fun)
	TagAtomUTF8      = 118 // ATOM_UTF8_EXT: Len:16, UTF-8
	TagSmallAtomUTF8 = 119 // SMALL_ATOM_UTF8_EXT: Len:8, UTF-8
	TagV4Port        = 120 // V4_PORT_EXT: Node, ID:64, Creation:32
	TagLocal         = 121 // LOCAL_EXT: a node-local encoding; always refused
)

// Fixed limits of the format itself, not configurable.
const (
	maxAtomRunes = 255 // an atom has at most 255 characters
	maxAtomBytes = 4 * maxAtomRunes
	maxRefWords  = 5 // NEWER_REFERENCE_EXT carries at most 5 ID words (OTP 26+)
)
