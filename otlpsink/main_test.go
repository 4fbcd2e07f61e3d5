package otlpsink_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a sink, an agent or the Collector's receiver starts must be gone when the
// tests end, except Ergo's SIGTERM watcher, which node.Stop does not end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
		goleak.IgnoreAnyFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
	)
}
