package node_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/node"
)

// Start a hidden Ergo node in an Erlang cluster, connect to the Brain, send it a term, and
// check its registered process with a round trip. (Not run: it needs a Brain.)
func ExampleStart() {
	epmdPort, err := node.EPMDPortFromEnv(os.Getenv)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := node.Start("pharos@127.0.0.1", node.Options{
		Cookie:   os.Getenv("PHAROS_COOKIE"),
		EPMDPort: epmdPort,
		TickTime: 60 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := n.Connect(ctx, "brain@127.0.0.1") // *EPMDError, *HandshakeError, *ConnectError
	if err != nil {
		fmt.Println(err)
		return
	}
	brain := gen.ProcessID{Name: "pharos_brain", Node: "brain@127.0.0.1"}
	if err := n.Send(brain, gen.Atom("hello")); err != nil {
		fmt.Println(err)
		return
	}
	rtt, err := conn.Probe(ctx, brain.Name)
	fmt.Println(rtt > 0, err)
}
