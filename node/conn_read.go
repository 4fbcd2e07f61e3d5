package node

// Reading: the reader goroutine's loop, and where each control message from the peer goes.

import (
	"bufio"
	"errors"
	"fmt"

	"ergo.services/ergo/gen"
)

// readLoop reads frames until the connection ends: ticks are answered, everything else is
// dispatched in the order it arrived.
func (c *Conn) readLoop() {
	fr := &frameReader{r: bufio.NewReaderSize(c.net, 64<<10), limit: c.opts.maxFrame}
	for {
		body, err := fr.next()
		if err != nil {
			c.shutdown(fmt.Errorf("reading from %s: %w", c.peer.name, err))
			return
		}
		c.framesIn.Add(1)
		c.stats.bytesIn.Add(uint64(len(body) + 4))
		if len(body) == 0 {
			c.stats.ticksIn.Add(1)
			c.sendTick() // answer every tick
			continue
		}
		c.dispatch(body)
	}
}

func (c *Conn) ignore(format string, args ...any) {
	c.stats.ignored.Add(1)
	c.log.Warning("node: ignored from %s: "+format, append([]any{c.peer.name}, args...)...)
}

func (c *Conn) dispatch(body []byte) {
	if body[0] != passThrough {
		c.ignore("frame with header %d (only pass-through 'p' is negotiated)", body[0])
		return
	}
	ctl, msg, err := decodeControl(body[1:])
	if err != nil {
		c.ignore("%v", err)
		return
	}
	if err := c.checkAddresses(ctl); err != nil {
		c.ignore("%T: %v", ctl, err)
		return
	}
	switch m := ctl.(type) {
	case Send:
		c.deliverPID(gen.PID{Node: c.Peer()}, m.To, msg)
	case SendSender:
		c.deliverPID(m.From, m.To, msg)
	case RegSend:
		value, err := c.decodeMessage(msg)
		if err != nil {
			c.ignore("REG_SEND to %s: %v", m.To, err)
			return
		}
		c.stats.msgIn.Add(1)
		if err := c.core.RouteSendProcessID(m.From, gen.ProcessID{Name: m.To, Node: c.self}, gen.MessageOptions{}, value); err != nil {
			if m.To == "net_kernel" && c.answerIsAuth(msg) {
				return
			}
			c.log.Debug("node: REG_SEND from %s to %s: %v", m.From, m.To, err)
		}
	case AliasSend:
		value, err := c.decodeMessage(msg)
		if err != nil {
			c.ignore("ALIAS_SEND: %v", err)
			return
		}
		c.stats.msgIn.Add(1)
		if c.completeCall(m.From, msg) {
			return
		}
		if err := c.core.RouteSendAlias(m.From, gen.Alias(m.Alias), gen.MessageOptions{}, value); err != nil {
			c.log.Debug("node: ALIAS_SEND from %s: %v", m.From, err)
		}
	case Link:
		c.peerLink(m.From, m.To)
	case Unlink:
		c.peerUnlink(m.From, m.To)
	case UnlinkID:
		c.peerUnlink(m.From, m.To)
		c.sendControlNow(UnlinkIDAck{ID: m.ID, From: m.To, To: m.From}, nil, false)
	case UnlinkIDAck:
		// our UNLINK_ID is complete: a confirmation's, or an UnlinkPID's (the link was
		// already forgotten when it was sent).
		c.confirmed(m)
	case Exit:
		c.peerExit(m)
	case Exit2:
		c.peerExit2(m)
	case MonitorP:
		c.peerMonitor(m)
	case DemonitorP:
		c.peerDemonitor(m)
	case MonitorPExit:
		c.monitorFired(m)
	default:
		c.ignore("control message with op %d", ctl.Op())
	}
}

// checkAddresses refuses a control message whose destination is not on this node, or whose
// sender (for links and monitors) is not on the peer: gen.Core would take such a destination
// for a remote one and dial its node, from the reading goroutine, and a foreign consumer of a
// link or monitor would make it dial that node when the local process ends. Erlang nodes send
// neither.
func (c *Conn) checkAddresses(ctl Control) error {
	local := func(pid gen.PID) error {
		if pid.Node != c.self {
			return fmt.Errorf("destination %s is not on this node", pid)
		}
		return nil
	}
	peer := func(pid gen.PID) error {
		if pid.Node != c.Peer() {
			return fmt.Errorf("sender %s is not on the peer", pid)
		}
		return nil
	}
	switch m := ctl.(type) {
	case Send:
		return local(m.To)
	case SendSender:
		return local(m.To)
	case AliasSend:
		if m.Alias.Node != c.self {
			return fmt.Errorf("alias %s is not on this node", m.Alias)
		}
	case Link:
		return errors.Join(peer(m.From), local(m.To))
	case Unlink:
		return local(m.To)
	case UnlinkID:
		return local(m.To)
	case Exit:
		return local(m.To)
	case Exit2:
		return local(m.To)
	case MonitorP:
		if m.To.Name == "" {
			return errors.Join(peer(m.From), local(m.To.PID))
		}
		return peer(m.From)
	}
	return nil
}

func (c *Conn) decodeMessage(msg []byte) (any, error) {
	if len(msg) == 0 {
		return nil, errors.New("no message after the control message")
	}
	return c.opts.decode(msg)
}

func (c *Conn) deliverPID(from, to gen.PID, msg []byte) {
	c.stats.msgIn.Add(1)
	if c.completeCall(from, msg) {
		return
	}
	value, err := c.decodeMessage(msg)
	if err != nil {
		c.ignore("message to %s: %v", to, err)
		return
	}
	if err := c.core.RouteSendPID(from, to, gen.MessageOptions{}, value); err != nil {
		c.log.Debug("node: message from %s to %s: %v", from, to, err)
	}
}
