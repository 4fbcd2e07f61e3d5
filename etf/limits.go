package etf

// Limits bound what one decode call accepts. A zero field takes its default (DefaultLimits); there is no
// way to switch a limit off, only to raise it. Whatever the limits, the decoder never trusts a length
// field: a count of elements, bytes or digits larger than the bytes left in the input is reported as
// io.ErrUnexpectedEOF before anything is allocated, so memory stays proportional to the input (or to
// the inflated input, for compressed terms).
type Limits struct {
	// MaxInputSize is the largest input, in bytes, one call reads. Default 16 MiB.
	MaxInputSize int
	// MaxDepth is how deeply containers (tuples, lists, maps, improper tails, fun environments) may
	// nest: 1 allows a tuple of scalars but no tuple inside it. Default 512. The encoder refuses values
	// nested deeper than DefaultMaxDepth, so what Marshal writes the default decoder reads.
	MaxDepth int
	// MaxBigIntBytes is the largest SMALL_BIG_EXT/LARGE_BIG_EXT magnitude, in bytes. Default 2048
	// (16384 bits).
	MaxBigIntBytes int
	// MaxDecompressedSize is the largest size a compressed term (tag 80) may inflate to. Default 16 MiB.
	// The size field is checked before inflating, and against the best ratio zlib can reach (1032:1),
	// so a small input never makes the decoder allocate a large buffer.
	MaxDecompressedSize int
}

// Defaults of Limits.
const (
	DefaultMaxInputSize        = 16 << 20
	DefaultMaxDepth            = 512
	DefaultMaxBigIntBytes      = 2048
	DefaultMaxDecompressedSize = 16 << 20
)

// DefaultLimits returns the limits Unmarshal uses.
func DefaultLimits() Limits {
	return Limits{
		MaxInputSize:        DefaultMaxInputSize,
		MaxDepth:            DefaultMaxDepth,
		MaxBigIntBytes:      DefaultMaxBigIntBytes,
		MaxDecompressedSize: DefaultMaxDecompressedSize,
	}
}

// withDefaults fills zero (or negative) fields.
func (l Limits) withDefaults() Limits {
	if l.MaxInputSize <= 0 {
		l.MaxInputSize = DefaultMaxInputSize
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxBigIntBytes <= 0 {
		l.MaxBigIntBytes = DefaultMaxBigIntBytes
	}
	if l.MaxDecompressedSize <= 0 {
		l.MaxDecompressedSize = DefaultMaxDecompressedSize
	}
	return l
}
