package etf

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the package wraps them in *DecodeError,
// *EncodeError or *ValidationError, which add the position.
var (
	// ErrNonFinite: a float is NaN or an infinity. The format has no such value, and one such term
	// makes BEAM drop the whole distribution connection, so the encoder refuses it, and so does the
	// decoder when a peer sends one.
	ErrNonFinite = errors.New("etf: float is NaN or infinite")

	// ErrLimit is wrapped by every error that reports a Limits violation.
	ErrLimit = errors.New("etf: limit exceeded")
	// ErrInputTooLarge: the input is longer than Limits.MaxInputSize.
	ErrInputTooLarge = fmt.Errorf("%w: input larger than MaxInputSize", ErrLimit)
	// ErrTooDeep: containers nest deeper than Limits.MaxDepth.
	ErrTooDeep = fmt.Errorf("%w: nesting deeper than MaxDepth", ErrLimit)
	// ErrBigIntTooLarge: a big integer has more digit bytes than Limits.MaxBigIntBytes.
	ErrBigIntTooLarge = fmt.Errorf("%w: big integer larger than MaxBigIntBytes", ErrLimit)
	// ErrDecompressedTooLarge: a compressed term inflates to more than Limits.MaxDecompressedSize.
	ErrDecompressedTooLarge = fmt.Errorf("%w: compressed term larger than MaxDecompressedSize", ErrLimit)

	// ErrVersion: the input does not start with the version byte 131.
	ErrVersion = errors.New("etf: missing version byte 131")
	// ErrUnknownTag: a tag this package does not know, or one not allowed where it stands.
	ErrUnknownTag = errors.New("etf: unknown or misplaced tag")
	// ErrLocalExt: LOCAL_EXT (121), a node-local encoding that only its own node can read.
	ErrLocalExt = errors.New("etf: LOCAL_EXT is node-local and refused")
	// ErrAtomCache: ATOM_CACHE_REF without an atom cache, or with an index the cache does not hold.
	ErrAtomCache = errors.New("etf: atom cache reference cannot be resolved")
	// ErrInvalid: the bytes break a rule of the format (an atom that is too long or not UTF-8, a
	// malformed float text, a bit count out of range, a reference with too many words, ...).
	ErrInvalid = errors.New("etf: invalid term encoding")
	// ErrDuplicateKey: a map holds the same key twice.
	ErrDuplicateKey = errors.New("etf: duplicate map key")
	// ErrTrailingData: Unmarshal found bytes after the term.
	ErrTrailingData = errors.New("etf: trailing data after term")
	// ErrCompressed: the zlib data of a compressed term is corrupt or its size field is wrong.
	ErrCompressed = errors.New("etf: corrupt compressed term")

	// ErrUnsupportedType: the encoder met a Go type it does not map to a term.
	ErrUnsupportedType = errors.New("etf: unsupported Go type")
	// ErrAtomTooLong: an atom has more than 255 characters.
	ErrAtomTooLong = errors.New("etf: atom longer than 255 characters")
	// ErrInvalidUTF8: an atom (encoding) or a record string (validation) is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("etf: invalid UTF-8")
	// ErrTooLarge: a binary, list, tuple or map is longer than its length field can say (2^32-1).
	ErrTooLarge = errors.New("etf: value too large for the format")
	// ErrInvalidValue: a Go value with no valid term form (a BitBinary with Bits out of range, a Ref
	// with Len 0 or above 5, an ImproperList without elements, a gen.PID creation out of range, ...).
	ErrInvalidValue = errors.New("etf: value has no valid term form")

	// ErrNotRecord: DecodeMetric or DecodeAlert got a valid term of another shape.
	ErrNotRecord = errors.New("etf: term is not the expected record")
)

// DecodeError reports where decoding failed. Offset is the byte offset of the term that failed, counted
// from the start of the input given to the call, or from the start of the inflated data when
// InCompressed is set; Tag is the tag byte there (0 when the input ended before it).
type DecodeError struct {
	Offset       int
	Tag          byte
	InCompressed bool
	Err          error
}

func (e *DecodeError) Error() string {
	where := "offset"
	if e.InCompressed {
		where = "inflated offset"
	}
	return fmt.Sprintf("etf: decode at %s %d (tag %d): %v", where, e.Offset, e.Tag, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports a Go value the encoder cannot write. Type is the Go type of the value that
// failed (the innermost one).
type EncodeError struct {
	Type string
	Err  error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("etf: encode %s: %v", e.Type, e.Err)
}

func (e *EncodeError) Unwrap() error { return e.Err }

func encodeError(v any, err error) error {
	return &EncodeError{Type: fmt.Sprintf("%T", v), Err: err}
}
