package node

// Links between local processes and the peer's. Ergo keeps a link as a consumer of a target;
// this table records which side made each one (both may), so that the peer's EXIT, UNLINK and
// UNLINK_ID undo exactly what gen.Core holds.

import "ergo.services/ergo/gen"

type linkKey struct{ local, remote gen.PID }

type linkOrigin uint8

const (
	linkedByUs linkOrigin = 1 << iota
	linkedByPeer
)

func (c *Conn) peerLink(remote, local gen.PID) {
	c.stateMu.Lock()
	k := linkKey{local: local, remote: remote}
	already := c.links[k]&linkedByPeer != 0
	c.links[k] |= linkedByPeer
	c.stateMu.Unlock()
	if already {
		return
	}
	// Register the peer process as a consumer of the local one, so that gen.Core tells us
	// (SendTerminatePID) when the local process ends.
	if err := c.core.RouteLinkPID(remote, local); err != nil {
		// no such local process: the link breaks at once, as in Erlang (reason noproc).
		c.stateMu.Lock()
		delete(c.links, k)
		c.stateMu.Unlock()
		c.sendControlNow(Exit{From: local, To: remote, Reason: encodeReason(gen.ErrProcessUnknown)}, nil, false)
	}
}

func (c *Conn) peerUnlink(remote, local gen.PID) {
	k := linkKey{local: local, remote: remote}
	c.stateMu.Lock()
	origin, ok := c.links[k]
	delete(c.links, k)
	c.stateMu.Unlock()
	if ok && origin&linkedByPeer != 0 {
		c.core.RouteUnlinkPID(remote, local)
	}
}

func (c *Conn) peerExit(remote, local gen.PID, rawReason []byte) {
	k := linkKey{local: local, remote: remote}
	c.stateMu.Lock()
	origin, ok := c.links[k]
	delete(c.links, k)
	c.stateMu.Unlock()
	reason := decodeReason(rawReason)
	if ok && origin&linkedByPeer != 0 {
		c.core.RouteUnlinkPID(remote, local)
	}
	if ok && origin&linkedByUs != 0 {
		// gen.Core holds local as a consumer of remote: let it deliver the exit.
		c.core.RouteTerminatePID(remote, reason)
		return
	}
	if err := c.core.RouteSendExit(remote, local, reason); err != nil {
		c.log.Debug("node: EXIT from %s to %s: %v", remote, local, err)
	}
}
