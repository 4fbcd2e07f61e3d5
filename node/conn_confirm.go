package node

// Delivery confirmations: a round trip through the peer's runtime on one pair of processes.
//
//	from -> to   UNLINK_ID {35, Id, From, To}         (then LINK again if from and to are linked)
//	to -> from   UNLINK_ID_ACK {36, Id, To, From}
//
// Erlang orders the signals between a pair of processes, and the peer's runtime answers
// UNLINK_ID_ACK when the process to handles the UNLINK_ID in its signal queue, that is after
// every message from sent it before has been put in its message queue (docs/node.md,
// "Confirmations", cites the protocol and erts). OTP answers UNLINK_ID whether or not the two
// processes are linked, and for a process that no longer exists (measured on OTP 25, 27, 29):
// the ack says "received by the node, in order", not "the process was alive".

import (
	"context"
	"errors"
	"fmt"

	"ergo.services/ergo/gen"
)

// MessageConfirmed is what the Ergo process that called Conn.Confirm receives when the peer's
// runtime answered: every message it sent PID before the confirmation is in PID's message
// queue. Err is set instead when the connection ended first (no answer will come).
type MessageConfirmed struct {
	ID  uint64
	PID gen.PID // the peer process
	Err error
}

// ErrTooManyConfirmations: the connection already waits for MaxPendingCalls answers.
var ErrTooManyConfirmations = errors.New("node: too many confirmations awaiting an answer")

type pendingConfirm struct {
	from, to gen.PID
	done     chan error // ConfirmWait's; nil for Confirm, whose answer is a message
}

// Confirm asks the peer's runtime to confirm, to the local process from, that the peer process
// to has received every message from sent it before this call (through this Conn or Ergo's
// Send). It returns at once with the confirmation's id; the answer arrives to from as a
// MessageConfirmed with that id. A link between from and to is kept.
func (c *Conn) Confirm(from, to gen.PID) (uint64, error) {
	return c.confirm(context.Background(), from, to, nil)
}

// ConfirmWait is Confirm for a caller that waits: it returns nil once the peer's runtime
// answered, the connection's error if it ended first, or ctx's error.
func (c *Conn) ConfirmWait(ctx context.Context, from, to gen.PID) error {
	done := make(chan error, 1)
	id, err := c.confirm(ctx, from, to, done)
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.stateMu.Lock()
		delete(c.confirms, id)
		c.stateMu.Unlock()
		return ctx.Err()
	}
}

func (c *Conn) confirm(ctx context.Context, from, to gen.PID, done chan error) (uint64, error) {
	if to.Node != c.Peer() {
		return 0, fmt.Errorf("node: confirm: %s is not on %s", to, c.Peer())
	}
	c.stateMu.Lock()
	if len(c.confirms) >= c.opts.maxCalls {
		c.stateMu.Unlock()
		return 0, ErrTooManyConfirmations
	}
	c.unlinkID++
	id := c.unlinkID
	c.confirms[id] = pendingConfirm{from: from, to: to, done: done}
	_, linked := c.links[linkKey{local: from, remote: to}]
	c.stateMu.Unlock()

	err := c.enqueue(ctx, func(dst []byte) ([]byte, error) {
		dst = appendFrame(dst, UnlinkID{ID: id, From: from, To: to}, nil)
		if linked {
			// UNLINK_ID removes the link on the peer: set it up again at once.
			dst = appendFrame(dst, Link{From: from, To: to}, nil)
		}
		return dst, nil
	})
	if err != nil {
		c.stateMu.Lock()
		delete(c.confirms, id)
		c.stateMu.Unlock()
		return 0, err
	}
	return id, nil
}

// confirmed delivers the peer's UNLINK_ID_ACK to the confirmation it answers; an ack of an
// UnlinkPID is not one.
func (c *Conn) confirmed(m UnlinkIDAck) {
	c.stateMu.Lock()
	p, ok := c.confirms[m.ID]
	delete(c.confirms, m.ID)
	c.stateMu.Unlock()
	if ok && p.to == m.From && p.from == m.To {
		c.answerConfirm(m.ID, p, nil)
	}
}

func (c *Conn) answerConfirm(id uint64, p pendingConfirm, err error) {
	if p.done != nil {
		p.done <- err
		return
	}
	msg := MessageConfirmed{ID: id, PID: p.to, Err: err}
	if err := c.core.RouteSendPID(p.to, p.from, gen.MessageOptions{}, msg); err != nil {
		c.log.Debug("node: confirmation %d to %s: %v", id, p.from, err)
	}
}
