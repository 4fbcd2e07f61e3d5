package node

// Links between local processes and the peer's. An Erlang link is symmetric; Ergo keeps a link as
// a consumer of a target, one direction per record. This table records which of the two records
// gen.Core holds for each link, so that the peer's EXIT, UNLINK and UNLINK_ID undo exactly
// those, and so that the end of either process reaches the other: a link made by a local
// process (LinkPID) holds both, one made by the peer (LINK) holds remoteOnLocal only (the
// remote end reaches the local process as the peer's EXIT, conn_exits.go).

import "ergo.services/ergo/gen"

type linkKey struct{ local, remote gen.PID }

// linkRecords says which records of a link gen.Core holds.
type linkRecords uint8

const (
	// localOnRemote: the local process consumes the remote one; gen.Core delivers the remote
	// process's end to it (RouteTerminatePID) and tells it noconnection when the node goes.
	localOnRemote linkRecords = 1 << iota
	// remoteOnLocal: the remote process consumes the local one; gen.Core reports the local
	// process's end to us (SendTerminatePID), which sends the peer EXIT.
	remoteOnLocal
)

func (c *Conn) peerLink(remote, local gen.PID) {
	c.stateMu.Lock()
	k := linkKey{local: local, remote: remote}
	already := c.links[k]&remoteOnLocal != 0
	c.links[k] |= remoteOnLocal
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

// peerUnlink: the peer removed the link (UNLINK, UNLINK_ID).
func (c *Conn) peerUnlink(remote, local gen.PID) {
	c.forgetLink(remote, local, localOnRemote|remoteOnLocal)
}

// forgetLink removes the link between local and remote from the table, and those of its
// records in gen.Core that undo says, without a word to the peer, which ended it (localOnRemote
// is undone through UnlinkPID, which finds the link gone and sends nothing). It returns the
// records the link had (0: there was no link).
func (c *Conn) forgetLink(remote, local gen.PID, undo linkRecords) linkRecords {
	k := linkKey{local: local, remote: remote}
	c.stateMu.Lock()
	records := c.links[k]
	delete(c.links, k)
	c.stateMu.Unlock()
	if records&undo&remoteOnLocal != 0 {
		c.core.RouteUnlinkPID(remote, local)
	}
	if records&undo&localOnRemote != 0 {
		c.core.RouteUnlinkPID(local, remote)
	}
	return records
}
