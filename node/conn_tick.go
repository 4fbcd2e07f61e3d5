package node

// Ticks: the liveness check of a connection (erl_dist_protocol.md: a frame of length 0). A tick
// goes out when nothing was written for a quarter of the tick time; a peer silent, or not
// reading, for the whole tick time is dropped.

import (
	"errors"
	"fmt"
	"time"

	"ergo.services/ergo/gen"
)

// ErrPeerSilent: nothing, not even a tick, arrived from the peer for the tick time.
var ErrPeerSilent = errors.New("node: peer silent for the tick time")

// ErrPeerNotReading: the peer took nothing of what we wrote for the tick time (it may still be
// sending, even ticking).
var ErrPeerNotReading = errors.New("node: peer read nothing for the tick time")

// SilentPeerError is the typed error ending a connection whose peer stopped answering.
type SilentPeerError struct {
	Peer    gen.Atom
	Silence time.Duration
}

func (e *SilentPeerError) Error() string {
	return fmt.Sprintf("connection with %s dropped: %v (%s)", e.Peer, ErrPeerSilent, e.Silence)
}

func (e *SilentPeerError) Unwrap() error { return ErrPeerSilent }

// sendTick queues a tick unless something is already waiting to be written: the tick loop must
// never block behind a full buffer, or it would stop watching for a silent peer, the one thing
// that ends a connection whose peer stopped reading.
func (c *Conn) sendTick() {
	c.mu.Lock()
	if len(c.pending) > 0 {
		c.mu.Unlock()
		return
	}
	c.stats.ticksOut.Add(1)
	_ = c.appendLocked(func(dst []byte) ([]byte, error) { return append(dst, 0, 0, 0, 0), nil })
}

// tickLoop sends a tick when nothing was written for a quarter of the tick time, and ends the
// connection when nothing was read for the whole tick time, or when the writer had something to
// write and the peer took none of it for the whole tick time (a peer that sends, even ticks,
// but no longer reads: without this, the writer and every sender would wait forever). It checks
// every eighth.
func (c *Conn) tickLoop() {
	step := c.opts.tickTime / 8
	if step <= 0 {
		step = time.Millisecond
	}
	t := time.NewTicker(step)
	defer t.Stop()
	lastIn, lastOut := c.framesIn.Load(), c.framesOut.Load()
	silentIn, silentOut, stuckOut := 0, 0, 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if in := c.framesIn.Load(); in != lastIn {
			lastIn, silentIn = in, 0
		} else {
			silentIn++
		}
		if out := c.framesOut.Load(); out != lastOut {
			lastOut, silentOut, stuckOut = out, 0, 0
		} else {
			silentOut++
			if c.writing.Load() {
				stuckOut++
			} else {
				stuckOut = 0
			}
		}
		if silentIn >= 8 {
			c.shutdown(&SilentPeerError{Peer: c.Peer(), Silence: time.Duration(silentIn) * step})
			return
		}
		if stuckOut >= 8 {
			c.shutdown(fmt.Errorf("connection with %s dropped: %w (%s, %d bytes waiting)",
				c.peer.name, ErrPeerNotReading, time.Duration(stuckOut)*step, c.pendingLen()))
			return
		}
		if silentOut >= 2 {
			silentOut = 0
			c.sendTick()
		}
	}
}
