package node

import (
	"context"
	"net"
	"testing"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeNodeRegistrar struct {
	gen.NodeRegistrar
	name gen.Atom
}

func (f fakeNodeRegistrar) Name() gen.Atom { return f.name }

func TestRegistrarStaticRoutesAndOutboundOnly(t *testing.T) {
	epmdCalls := 0
	port := fakeEPMD(t, func(req []byte) []byte {
		epmdCalls++
		return port2Resp(9200, string(req[1:]))
	})
	r := NewRegistrar(RegistrarOptions{
		EPMD:     EPMDClient{Port: port},
		Static:   map[gen.Atom]StaticRoute{"brain@10.1.2.3": {Host: "10.1.2.3", Port: 9100}},
		Register: false,
	})
	// an outbound-only node never registers, even when handed a route
	static, err := r.Register(fakeNodeRegistrar{name: "pharos@h"}, gen.RegisterRoutes{Routes: []gen.Route{{Port: 1}}})
	require.NoError(t, err)
	require.Len(t, static.Routes, 1)
	for match, route := range static.Routes {
		assert.Equal(t, `^brain@10\.1\.2\.3$`, match)
		assert.Equal(t, uint16(9100), route.Route.Port)
		assert.Equal(t, ProtocolVersion(), route.Route.HandshakeVersion)
	}
	routes, err := r.Resolve("brain@10.1.2.3")
	require.NoError(t, err)
	assert.Equal(t, "10.1.2.3", routes[0].Host)
	assert.Zero(t, epmdCalls, "static routes skip EPMD")

	addr, err := r.Addr(context.Background(), "other@127.0.0.1")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9200", addr)
	assert.Equal(t, 1, epmdCalls)

	_, err = r.Resolve("not-a-node-name")
	require.Error(t, err)
	_, err = r.ResolveProxy("x@y")
	require.ErrorIs(t, err, ErrNoErlangEquivalent)
	r.Terminate()
}

// The handshake learns which node a dialled address belongs to from the routes the Registrar
// handed out (static, or resolved through EPMD): TLS takes the node's host as server name.
func TestRegistrarNamesTheNodeDialled(t *testing.T) {
	port := fakeEPMD(t, func(req []byte) []byte { return port2Resp(9300, string(req[1:])) })
	r := NewRegistrar(RegistrarOptions{
		EPMD: EPMDClient{Port: port},
		Static: map[gen.Atom]StaticRoute{
			"brain@brainhost": {Host: "10.1.2.3", Port: 9100},
			"other@otherhost": {Host: "10.1.2.4", Port: 9100},
		},
	})
	addr := func(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	assert.Equal(t, gen.Atom("brain@brainhost"), r.nodeAt(addr("10.1.2.3", 9100)))
	assert.Equal(t, gen.Atom("other@otherhost"), r.nodeAt(addr("10.1.2.4", 9100)))
	assert.Equal(t, gen.Atom(""), r.nodeAt(addr("10.1.2.5", 9100)))

	_, err := r.Resolve("brain@localhost")
	require.NoError(t, err)
	assert.Equal(t, gen.Atom("brain@localhost"), r.nodeAt(addr("127.0.0.1", 9300)), "the one route at that port")
	_, err = r.Resolve("brain2@127.0.0.1")
	require.NoError(t, err)
	assert.Equal(t, gen.Atom("brain2@127.0.0.1"), r.nodeAt(addr("127.0.0.1", 9300)), "an address is matched exactly first")
	assert.Equal(t, "localhost", serverName("brain@localhost", addr("127.0.0.1", 9300)))
	assert.Equal(t, "127.0.0.1", serverName("", addr("127.0.0.1", 9300)))
}
