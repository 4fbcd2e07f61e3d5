package agent_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine an agent starts (Ergo's node, the connection manager, the spill log's group
// commit, the connection's reader, writer and ticker) must be gone when the tests end, except
// Ergo's SIGTERM watcher, which node.Stop does not end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
		goleak.IgnoreAnyFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
	)
}
