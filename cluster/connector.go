package cluster

import (
	"context"
	"sync"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/node"
)

// serialConnector makes the connections of a cluster one at a time per peer node: every shard's
// manager and every health watch of a node's members connect to it, at once after a start or a
// restart, and simultaneous dials of one peer fail but one (the peer closes the others'
// handshakes). A caller that waited finds the connection made and gets it at once.
type serialConnector struct {
	inner brain.Connector
	mu    sync.Mutex
	peers map[gen.Atom]chan struct{} // a one-slot semaphore per peer
}

func newSerialConnector(inner brain.Connector) *serialConnector {
	return &serialConnector{inner: inner, peers: map[gen.Atom]chan struct{}{}}
}

func (s *serialConnector) Connect(ctx context.Context, peer gen.Atom) (*node.Conn, error) {
	s.mu.Lock()
	sem, ok := s.peers[peer]
	if !ok {
		sem = make(chan struct{}, 1)
		s.peers[peer] = sem
	}
	s.mu.Unlock()
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-sem }()
	return s.inner.Connect(ctx, peer)
}
