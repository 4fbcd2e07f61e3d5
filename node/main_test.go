package node

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Ergo's node-wide goroutines that outlive StopForce in interop tests.
		// Ergo's per-node SIGTERM watcher: StopForce leaves it blocked on its signal channel.
		goleak.IgnoreAnyFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
	)
}
