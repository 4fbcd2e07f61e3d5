package node

// gen_server:call emulation, both ways. An Ergo Call to a BEAM process goes out as the message
// {'$gen_call', {From, Ref}, Request}; the {Ref, Reply} answer completes it. net_kernel is
// played just enough for net_adm:ping/1 and Probe.

import (
	"context"
	"fmt"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
)

type pendingCall struct {
	caller gen.PID
	since  time.Time
}

// completeCall treats msg as the reply {Ref, Reply} to a pending call; it reports whether it was.
func (c *Conn) completeCall(from gen.PID, msg []byte) bool {
	c.stateMu.Lock()
	n := len(c.calls) + len(c.waiters)
	c.stateMu.Unlock()
	if n == 0 {
		return false
	}
	r := &termReader{b: msg}
	if r.version() != nil {
		return false
	}
	if arity, err := r.tupleHeader(); err != nil || arity != 2 {
		return false
	}
	if tag, err := r.peek(); err != nil || (tag != etf.TagNewerRef && tag != etf.TagNewReference) {
		return false
	}
	ref, err := r.ref()
	if err != nil {
		return false
	}
	c.stateMu.Lock()
	call, ok := c.calls[ref]
	delete(c.calls, ref)
	w, isWaiter := c.waiters[ref]
	delete(c.waiters, ref)
	c.stateMu.Unlock()
	if isWaiter {
		w <- nil
		return true
	}
	if !ok {
		return false
	}
	reply := append([]byte{etf.TagVersion}, msg[r.off:]...)
	value, err := c.opts.decode(reply)
	if err != nil {
		c.core.RouteSendResponseError(from, call.caller, gen.MessageOptions{Ref: ref}, err)
		return true
	}
	c.core.RouteSendResponse(from, call.caller, gen.MessageOptions{Ref: ref}, value)
	return true
}

func (c *Conn) addCall(caller gen.PID, ref gen.Ref) {
	now := c.opts.now()
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	if len(c.calls) >= c.opts.maxCalls {
		// callers gave up long ago on the oldest ones (Ergo call timeouts are seconds)
		for k, v := range c.calls {
			if now.Sub(v.since) > time.Minute {
				delete(c.calls, k)
			}
		}
		if len(c.calls) >= c.opts.maxCalls {
			for k := range c.calls {
				delete(c.calls, k)
				break
			}
		}
	}
	c.calls[ref] = pendingCall{caller: caller, since: now}
}

// genCallTerm is {'$gen_call', {From, Ref}, Message}.
type genCallTerm struct {
	from    gen.PID
	ref     gen.Ref
	message any
}

func (c *Conn) appendGenCall(dst []byte, g genCallTerm) ([]byte, error) {
	dst = append(dst, etf.TagVersion)
	dst = appendTupleHeader(dst, 3)
	dst = appendAtom(dst, "$gen_call")
	dst = appendTupleHeader(dst, 2)
	dst = appendPid(dst, g.from)
	dst = appendRef(dst, g.ref)
	if raw, ok := g.message.(RawTerm); ok {
		if len(raw) < 2 || raw[0] != etf.TagVersion {
			return dst, fmt.Errorf("node: RawTerm must start with the version byte 131")
		}
		return append(dst, raw[1:]...), nil
	}
	return c.opts.encode(dst, g.message)
}

func (c *Conn) sendCall(ctl Control, from gen.PID, ref gen.Ref, message any) error {
	c.addCall(from, ref)
	err := c.enqueue(context.Background(), func(dst []byte) ([]byte, error) {
		dst, start := beginFrame(dst)
		dst = ctl.appendTerm(dst)
		dst, err := c.appendGenCall(dst, genCallTerm{from: from, ref: ref, message: message})
		if err != nil {
			return dst, err
		}
		return finishFrame(dst, start), nil
	})
	if err != nil {
		c.stateMu.Lock()
		delete(c.calls, ref)
		c.stateMu.Unlock()
	} else {
		c.stats.msgOut.Add(1)
	}
	return err
}

// answerIsAuth plays net_kernel for net_adm:ping/1: a {'$gen_call', {Pid, Tag}, {is_auth, _}}
// sent to net_kernel on this node is answered {Tag, yes}. It reports whether msg was one.
func (c *Conn) answerIsAuth(msg []byte) bool {
	r := &termReader{b: msg}
	if r.version() != nil {
		return false
	}
	if n, err := r.tupleHeader(); err != nil || n != 3 {
		return false
	}
	if a, err := r.atom(); err != nil || a != "$gen_call" {
		return false
	}
	if n, err := r.tupleHeader(); err != nil || n != 2 {
		return false
	}
	caller, err := r.pid()
	if err != nil {
		return false
	}
	tag, err := r.skip()
	if err != nil {
		return false
	}
	if n, err := r.tupleHeader(); err != nil || n != 2 {
		return false
	}
	if a, err := r.atom(); err != nil || a != "is_auth" {
		return false
	}
	reply := appendTupleHeader([]byte{etf.TagVersion}, 2)
	reply = append(reply, tag...)
	reply = appendAtom(reply, "yes")
	// From the reading goroutine: without waiting for room. A failure means the connection
	// is ending; it was an is_auth all the same.
	c.sendControlNow(c.sendToPID(c.core.PID(), caller), RawTerm(reply), true)
	return true
}
