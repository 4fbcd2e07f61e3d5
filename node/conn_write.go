package node

// Writing. Send methods append a complete frame to the pending buffer under a mutex and wake
// the writer, so frames are never interleaved and the order of the calls is the order on the
// wire. When more than the high-water mark is pending, senders wait: the socket, not memory,
// sets the pace.

import (
	"context"
	"fmt"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
)

// enqueue appends one frame built by build to the pending buffer. It waits while more than the
// high-water mark is pending (the peer reads slower than we write), until there is room, the
// connection ends, or ctx is done: then it fails with ErrSendBufferFull wrapping ctx's error,
// and nothing of the frame was sent.
func (c *Conn) enqueue(ctx context.Context, build func(dst []byte) ([]byte, error)) error {
	if err := c.lockWithRoom(ctx); err != nil {
		return err
	}
	return c.appendLocked(build)
}

// enqueueMany is enqueue for n frames, in order: it appends as many as the buffer takes (at least
// one) under each locking and wakes the writer once per locking, waiting for room as enqueue
// does between them. It returns how many frames were appended; with an error, frame sent (the
// one that failed) and those after it were not.
func (c *Conn) enqueueMany(ctx context.Context, n int, build func(dst []byte, i int) ([]byte, error)) (int, error) {
	sent := 0
	for sent < n {
		if err := c.lockWithRoom(ctx); err != nil {
			return sent, err
		}
		if c.closed {
			err := c.closeErr
			c.mu.Unlock()
			return sent, fmt.Errorf("%w: %w", ErrConnectionClosed, err)
		}
		start := len(c.pending)
		var err error
		for sent < n && len(c.pending) < c.opts.highWater { // room for one at least: lockWithRoom
			mark := len(c.pending)
			var buf []byte
			if buf, err = build(c.pending, sent); err != nil {
				c.pending = buf[:mark]
				break
			}
			c.pending = buf
			sent++
		}
		grew := len(c.pending) > start
		c.mu.Unlock()
		if start == 0 && grew {
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// lockWithRoom locks c.mu once less than the high-water mark is pending or the connection is
// closed; when ctx ends first it returns ErrSendBufferFull, unlocked.
func (c *Conn) lockWithRoom(ctx context.Context) error {
	c.mu.Lock()
	if len(c.pending) >= c.opts.highWater && !c.closed && ctx.Done() != nil {
		// Wake the wait below when ctx ends (stop does not wait for the function to run).
		stop := context.AfterFunc(ctx, func() {
			c.mu.Lock()
			c.space.Broadcast()
			c.mu.Unlock()
		})
		defer stop()
	}
	for len(c.pending) >= c.opts.highWater && !c.closed {
		if err := ctx.Err(); err != nil {
			pending := len(c.pending)
			c.mu.Unlock()
			return fmt.Errorf("%w (%d bytes waiting for %s): %w", ErrSendBufferFull, pending, c.peer.name, err)
		}
		c.space.Wait()
	}
	return nil
}

// enqueueNow is enqueue without the wait: for the few small frames the connection sends on its
// own (ticks, and answers from the reading goroutine, which must never block on a peer that is
// itself blocked writing to us).
func (c *Conn) enqueueNow(build func(dst []byte) ([]byte, error)) error {
	c.mu.Lock()
	return c.appendLocked(build)
}

// appendLocked appends the frame build makes and unlocks c.mu.
func (c *Conn) appendLocked(build func(dst []byte) ([]byte, error)) error {
	if c.closed {
		err := c.closeErr
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrConnectionClosed, err)
	}
	start := len(c.pending)
	buf, err := build(c.pending)
	if err != nil {
		c.pending = buf[:start]
		c.mu.Unlock()
		return err
	}
	c.pending = buf
	c.mu.Unlock()
	if start == 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// controlFrame returns the builder of a control message's frame, with an optional message
// value (hasMsg).
func (c *Conn) controlFrame(ctl Control, msg any, hasMsg bool) func(dst []byte) ([]byte, error) {
	return func(dst []byte) ([]byte, error) {
		dst, start := beginFrame(dst)
		dst = ctl.appendTerm(dst)
		if hasMsg {
			var err error
			if dst, err = c.appendMessage(dst, msg); err != nil {
				return dst, err
			}
		}
		return finishFrame(dst, start), nil
	}
}

// sendControl sends a control message with an optional message value (nil: none), waiting for
// room in the buffer until ctx is done (enqueue).
func (c *Conn) sendControl(ctx context.Context, ctl Control, msg any, hasMsg bool) error {
	err := c.enqueue(ctx, c.controlFrame(ctl, msg, hasMsg))
	if err == nil && hasMsg {
		c.stats.msgOut.Add(1)
	}
	return err
}

// sendControlNow is sendControl without waiting for room, for what the connection owes the peer
// (an ack, an exit, a monitor's end, an is_auth answer) from the reading goroutine, which must
// keep reading, and for clean-ups after ctx ended. A failure (the connection is ending) is
// logged at debug level.
func (c *Conn) sendControlNow(ctl Control, msg any, hasMsg bool) {
	if err := c.enqueueNow(c.controlFrame(ctl, msg, hasMsg)); err != nil {
		c.log.Debug("node: answer %T to %s: %v", ctl, c.peer.name, err)
		return
	}
	if hasMsg {
		c.stats.msgOut.Add(1)
	}
}

// sendToPID is the control message of a send from a local process to a peer pid: SEND_SENDER,
// or SEND if the peer lacks FlagSendSender.
func (c *Conn) sendToPID(from, to gen.PID) Control {
	if c.peer.flags&FlagSendSender != 0 {
		return SendSender{From: from, To: to}
	}
	return Send{To: to}
}

func (c *Conn) appendMessage(dst []byte, msg any) ([]byte, error) {
	if raw, ok := msg.(RawTerm); ok {
		if len(raw) < 2 || raw[0] != etf.TagVersion {
			return dst, fmt.Errorf("node: RawTerm must start with the version byte 131")
		}
		return append(dst, raw...), nil
	}
	dst = append(dst, etf.TagVersion)
	return c.opts.encode(dst, msg)
}

func (c *Conn) writeLoop() {
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		for {
			c.mu.Lock()
			if len(c.pending) == 0 || c.closed {
				c.mu.Unlock()
				break
			}
			out := c.pending
			c.pending = c.spare[:0]
			c.spare = nil
			c.space.Broadcast()
			c.mu.Unlock()

			if err := c.write(out); err != nil {
				c.shutdown(fmt.Errorf("writing to %s: %w", c.peer.name, err))
				return
			}
			if cap(out) > 4*c.opts.highWater {
				out = nil // do not keep a buffer grown by one huge message
			}
			c.mu.Lock()
			c.spare = out[:0]
			c.mu.Unlock()
		}
	}
}

// writeChunk is the most the writer hands the socket at once: the tick loop sees the writer's
// progress at this grain, so a peer that reads at all (a chunk per tick time) is not dropped.
const writeChunk = 64 << 10

// write writes out to the socket a chunk at a time, counting each chunk as written.
func (c *Conn) write(out []byte) error {
	c.writing.Store(true)
	defer c.writing.Store(false)
	for len(out) > 0 {
		n := min(len(out), writeChunk)
		_, err := c.net.Write(out[:n])
		c.framesOut.Add(1)
		c.stats.bytesOut.Add(uint64(n))
		if err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

// pendingLen is how many bytes wait for the writer.
func (c *Conn) pendingLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
