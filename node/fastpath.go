package node

// The fast path: messages whose term is already encoded (package etf's AppendMetric output, a
// spilled record, ...) go to the wire without being decoded and re-encoded, appended straight
// into the connection's pending buffer.

import (
	"context"
	"encoding/binary"
	"fmt"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
)

// SendRaw sends the pre-encoded term (term_to_binary output, starting with 131) to the process
// registered as to on the peer, as from.
//
// Like every send of the fast path it waits while the connection's buffer is full (the peer
// reads slower than we write) and gives up when ctx is done, with ErrSendBufferFull; nothing
// of the message was sent then. It fails with ErrConnectionClosed once the connection ended.
func (c *Conn) SendRaw(ctx context.Context, from gen.PID, to gen.Atom, term RawTerm) error {
	return c.sendControl(ctx, RegSend{From: from, To: to}, term, true)
}

// SendBinary sends a binary holding payload (for example a term_to_binary output: the Brain's
// "payload" delivery mode) to the process registered as to on the peer.
func (c *Conn) SendBinary(ctx context.Context, from gen.PID, to gen.Atom, payload []byte) error {
	return c.SendAppend(ctx, from, to, func(dst []byte) ([]byte, error) {
		dst = append(dst, etf.TagVersion, etf.TagBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
		return append(dst, payload...), nil
	})
}

// SendAppend sends to the process registered as to on the peer a message that appendMessage
// writes, with its 131 version byte, straight into the connection's buffer. appendMessage runs
// under the connection's send lock: it must be quick and must not call back into the Conn.
func (c *Conn) SendAppend(ctx context.Context, from gen.PID, to gen.Atom, appendMessage func(dst []byte) ([]byte, error)) error {
	ctl := RegSend{From: from, To: to}
	err := c.enqueue(ctx, func(dst []byte) ([]byte, error) {
		dst, start := beginFrame(dst)
		dst = ctl.appendTerm(dst)
		msgStart := len(dst)
		dst, err := appendMessage(dst)
		if err != nil {
			return dst, err
		}
		if len(dst) <= msgStart || dst[msgStart] != etf.TagVersion {
			return dst, fmt.Errorf("node: SendAppend: the message must start with the version byte 131")
		}
		return finishFrame(dst, start), nil
	})
	if err == nil {
		c.stats.msgOut.Add(1)
	}
	return err
}

// AppendBinaryHeader appends the 131 version byte and a BINARY_EXT header for a binary of n
// bytes; the caller appends the n bytes. With PatchBinaryLength it lets a payload be encoded in
// place: header first, payload after, length fixed once known.
func AppendBinaryHeader(dst []byte, n int) []byte {
	dst = append(dst, etf.TagVersion, etf.TagBinary)
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// PatchBinaryLength sets the length of the binary whose header AppendBinaryHeader wrote at
// offset start of dst to the bytes that follow it.
func PatchBinaryLength(dst []byte, start int) {
	binary.BigEndian.PutUint32(dst[start+2:], uint32(len(dst)-start-6))
}

// SendAppendMany sends n messages to the process registered as to on the peer, in order, as n
// calls of SendAppend would, but appending as many frames as the buffer takes under one lock
// (and one wake-up of the writer), not one per message: for a sender that has records together.
// appendMessage(dst, i) writes message i with its 131 version byte; it runs under the
// connection's send lock and must not call back into the Conn. It returns how many messages,
// from the front, were sent: with an error (the connection ended, ctx done while the buffer was
// full, or appendMessage's own), the rest were not, and nothing of message sent was.
func (c *Conn) SendAppendMany(ctx context.Context, from gen.PID, to gen.Atom, n int, appendMessage func(dst []byte, i int) ([]byte, error)) (int, error) {
	ctl := RegSend{From: from, To: to}.appendTerm(nil)
	sent, err := c.enqueueMany(ctx, n, func(dst []byte, i int) ([]byte, error) {
		dst, start := beginFrame(dst)
		dst = append(dst, ctl...)
		msgStart := len(dst)
		dst, err := appendMessage(dst, i)
		if err != nil {
			return dst, err
		}
		if len(dst) <= msgStart || dst[msgStart] != etf.TagVersion {
			return dst, fmt.Errorf("node: SendAppendMany: the message must start with the version byte 131")
		}
		return finishFrame(dst, start), nil
	})
	c.stats.msgOut.Add(uint64(sent))
	return sent, err
}

// SendBinaries sends each payload as a binary (SendBinary) to the process registered as to on
// the peer, in order, with SendAppendMany.
func (c *Conn) SendBinaries(ctx context.Context, from gen.PID, to gen.Atom, payloads [][]byte) (int, error) {
	return c.SendAppendMany(ctx, from, to, len(payloads), func(dst []byte, i int) ([]byte, error) {
		p := payloads[i]
		dst = append(dst, etf.TagVersion, etf.TagBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
		return append(dst, p...), nil
	})
}
