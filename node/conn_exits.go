package node

// Exit signals from the peer, delivered to Ergo processes as Erlang delivers them (the
// reference manual's "Receiving Exit Signals"; docs/node.md, "Exit signals"):
//
//	signal                         not trapping exits      trapping exits
//	EXIT2 (exit/2) normal          ignored                 message {'EXIT', From, normal}
//	EXIT2 kill                     ends, reason killed     ends, reason killed (untrappable)
//	EXIT2 any other reason         ends with it            message {'EXIT', From, Reason}
//	EXIT (a link broke) normal     ignored                 message {'EXIT', From, normal}
//	EXIT any other reason (kill    ends with it            message {'EXIT', From, Reason}
//	included: only exit/2's kill is untrappable)
//
// The message is a gen.MessageExitPID, what an Ergo actor that traps exits receives in
// HandleMessage. Ergo does not let the node layer see whether a process traps exits, so a
// normal exit always arrives as that message, never as Ergo's exit signal (which would end a
// process that does not trap exits); an actor that does not trap exits finds it in
// HandleMessage, where Erlang would have dropped it. An EXIT for a link that does not exist
// (any more) is dropped, as Erlang drops it. The _TT and PAYLOAD forms arrive here as Exit and
// Exit2.

import (
	"errors"

	"ergo.services/ergo/gen"
)

// peerExit2 delivers an exit signal sent with erlang:exit/2.
func (c *Conn) peerExit2(m Exit2) {
	reason := decodeReason(m.Reason)
	var err error
	switch {
	case errors.Is(reason, gen.TerminateReasonNormal):
		err = c.exitMessage(m.From, m.To, reason)
	case isAtom(m.Reason, "kill"):
		err = c.kill(m.To)
	default:
		err = c.core.RouteSendExit(m.From, m.To, reason)
	}
	if err != nil {
		c.log.Debug("node: EXIT2 from %s to %s: %v", m.From, m.To, err)
	}
}

// peerExit delivers the exit signal of a broken link: the remote process ended.
func (c *Conn) peerExit(m Exit) {
	remote, local := m.From, m.To
	reason := decodeReason(m.Reason)
	normal := errors.Is(reason, gen.TerminateReasonNormal)
	undo := remoteOnLocal
	if normal {
		undo |= localOnRemote
	}
	records := c.forgetLink(remote, local, undo)
	var err error
	switch {
	case records == 0:
		c.log.Debug("node: EXIT from %s to %s without a link: dropped", remote, local)
		return
	case normal:
		err = c.exitMessage(remote, local, reason)
	case records&localOnRemote != 0:
		// gen.Core holds local as a consumer of remote: it delivers the exit to every local
		// process linked to remote, and ends their monitors of it.
		err = c.core.RouteTerminatePID(remote, reason)
	default:
		err = c.core.RouteSendExit(remote, local, reason)
	}
	if err != nil {
		c.log.Debug("node: EXIT from %s to %s: %v", remote, local, err)
	}
}

// exitMessage delivers an exit signal that must not end the process as the message
// gen.MessageExitPID.
func (c *Conn) exitMessage(from, to gen.PID, reason error) error {
	return c.core.RouteSendPID(from, to, gen.MessageOptions{}, gen.MessageExitPID{PID: from, Reason: reason})
}

// kill ends a local process unconditionally, as exit(Pid, kill) does: Ergo's Kill, which
// gen.Core does not offer but the node behind it does.
func (c *Conn) kill(pid gen.PID) error {
	if k, ok := c.core.(interface{ Kill(gen.PID) error }); ok {
		return k.Kill(pid)
	}
	return c.core.RouteSendExit(gen.PID{Node: c.Peer()}, pid, gen.TerminateReasonKill)
}

// isAtom reports whether raw (a term without its version byte) is the atom a.
func isAtom(raw []byte, a string) bool {
	r := &termReader{b: raw}
	got, err := r.atom()
	return err == nil && r.off == len(raw) && got == a
}
