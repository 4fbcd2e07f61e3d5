package etf

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
)

// A compressed term is 80, UncompressedSize:32, then a zlib stream (RFC 1950) that inflates to exactly
// UncompressedSize bytes holding one term (its tag first, no version byte). term_to_binary(T,
// [compressed]) writes it, and only when it is shorter than the plain form.

// maxDeflateRatio is the largest expansion deflate can achieve (258-byte matches coded in 2 bits):
// about 1032:1. A size field promising more than that from the bytes at hand cannot be honoured by them.
const maxDeflateRatio = 1032

// inflate decompresses src, which must inflate to exactly size bytes, and returns those bytes and how
// many bytes of src the zlib stream used. It allocates size bytes only after checking size against
// maxSize and against what len(src) can possibly inflate to.
func inflate(src []byte, size uint64, maxSize int) ([]byte, int, error) {
	if size > uint64(maxSize) {
		return nil, 0, ErrDecompressedTooLarge
	}
	if size == 0 {
		return nil, 0, fmt.Errorf("%w: uncompressed size 0", ErrCompressed)
	}
	if size > maxDeflateRatio*uint64(len(src))+maxDeflateRatio {
		// Either the input is cut short or the size field lies; with the bytes given, it is the former.
		return nil, 0, io.ErrUnexpectedEOF
	}
	r := bytes.NewReader(src)
	zr, err := zlib.NewReader(r)
	if err != nil {
		return nil, 0, zlibError(err)
	}
	out := make([]byte, size)
	for n := 0; n < len(out); {
		m, err := zr.Read(out[n:])
		n += m
		if err == io.EOF && n < len(out) {
			return nil, 0, fmt.Errorf("%w: inflates to %d bytes, size field says %d", ErrCompressed, n, size)
		}
		if err != nil && err != io.EOF {
			return nil, 0, zlibError(err)
		}
		if m == 0 && err == nil {
			return nil, 0, fmt.Errorf("%w: no progress", ErrCompressed)
		}
	}
	// The stream must end here, and its checksum must hold.
	var one [1]byte
	for range 16 {
		m, err := zr.Read(one[:])
		if m > 0 {
			return nil, 0, fmt.Errorf("%w: inflates to more than the size field's %d bytes", ErrCompressed, size)
		}
		if err == io.EOF {
			return out, len(src) - r.Len(), nil
		}
		if err != nil {
			return nil, 0, zlibError(err)
		}
	}
	return nil, 0, fmt.Errorf("%w: no progress", ErrCompressed)
}

func zlibError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %v", ErrCompressed, err)
}
