package node

// Framing (private). Two layers, as in erl_dist_protocol.md:
//
//	handshake frame:   Len:16 | Body           (Len:32 inside TLS, as inet_tls_dist uses {packet,4})
//	connection frame:  Len:32 | Body           Len = 0 is a tick
//	Body (no atom cache, FlagDistHdrAtomCache never set):
//	                   112 ('p') | ControlMessage (131, term) | [Message (131, term)]
//
// A frame longer than the configured limit is refused before anything is allocated.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const passThrough = 112 // 'p': a body without distribution header

// ErrFrameTooLarge is returned when a peer announces a frame longer than the configured limit.
var ErrFrameTooLarge = errors.New("node: frame exceeds the size limit")

// FrameTooLargeError ends a connection whose peer announced a frame (one message with its
// control message) longer than the limit (Options.MaxFrame, ProtoOptions.MaxFrame); nothing of
// the frame was read. errors.Is(err, ErrFrameTooLarge) holds.
type FrameTooLargeError struct {
	Size, Limit int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("node: the peer sent a frame of %d bytes, over the limit of %d (MaxFrame)", e.Size, e.Limit)
}

func (e *FrameTooLargeError) Unwrap() error { return ErrFrameTooLarge }

// errTLSRecord: a plain handshake frame's length is the start of a TLS record (content type
// 20 to 23, then major version 3): the peer speaks TLS. No handshake message is that long.
var errTLSRecord = errors.New("node: the peer sent a TLS record")

// readHandshakeFrame reads one handshake frame; lenSize is 2 (TCP) or 4 (TLS).
func readHandshakeFrame(r io.Reader, lenSize int, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:lenSize]); err != nil {
		return nil, err
	}
	if lenSize == 2 && hdr[0] >= 20 && hdr[0] <= 23 && hdr[1] == 3 {
		return nil, errTLSRecord
	}
	var n int
	if lenSize == 2 {
		n = int(binary.BigEndian.Uint16(hdr[:2]))
	} else {
		n = int(binary.BigEndian.Uint32(hdr[:4]))
	}
	if n > limit {
		return nil, fmt.Errorf("%w: handshake frame of %d bytes (limit %d)", ErrFrameTooLarge, n, limit)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// writeHandshakeFrame writes body with its 2- or 4-byte length, in one Write.
func writeHandshakeFrame(w io.Writer, lenSize int, body []byte) error {
	frame := make([]byte, lenSize, lenSize+len(body))
	if lenSize == 2 {
		if len(body) > 0xffff {
			return fmt.Errorf("%w: handshake frame of %d bytes", ErrFrameTooLarge, len(body))
		}
		binary.BigEndian.PutUint16(frame, uint16(len(body)))
	} else {
		binary.BigEndian.PutUint32(frame, uint32(len(body)))
	}
	_, err := w.Write(append(frame, body...))
	return err
}

// frameReader reads connection frames, reusing one buffer: the returned slice is valid until the
// next call.
type frameReader struct {
	r     io.Reader
	limit int
	hdr   [4]byte
	buf   []byte
}

// next returns the next frame body; an empty body is a tick. io.EOF only at a frame boundary.
func (fr *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(fr.hdr[:]))
	if n > fr.limit {
		return nil, &FrameTooLargeError{Size: n, Limit: fr.limit}
	}
	if cap(fr.buf) < n {
		fr.buf = make([]byte, n)
	}
	body := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if cap(fr.buf) > 1<<20 && n < 1<<16 {
		fr.buf = nil // do not pin a huge buffer after one large message
	}
	return body, nil
}

// beginFrame appends a frame header placeholder and the pass-through byte; finishFrame patches
// the length once the body is complete.
func beginFrame(dst []byte) ([]byte, int) {
	start := len(dst)
	return append(dst, 0, 0, 0, 0, passThrough), start
}

func finishFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
