package node_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/node"
)

// Start a hidden Ergo node in an Erlang cluster (the cookie from ~/.erlang.cookie, the EPMD port
// from ERL_EPMD_PORT, SIGINT and SIGTERM for the program, not Ergo), connect to the Brain, send
// it a term, and check its registered process with a round trip. (Not run: it needs a Brain.)
func ExampleStart() {
	cookie, err := node.ReadCookieFile("")
	if err != nil {
		fmt.Println(err)
		return
	}
	sigs := make(chan os.Signal, 2)
	n, err := node.Start("pharos@127.0.0.1", node.Options{
		Cookie:   cookie,
		TickTime: 60 * time.Second,
		Signals:  sigs,
	})
	if err != nil {
		fmt.Println(err) // a *NameInUseError if another node holds the name on this host
		return
	}
	defer n.Stop()
	defer signal.Stop(sigs)

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
