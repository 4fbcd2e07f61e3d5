package fsm

import (
	"testing"

	"go.uber.org/goleak"
)

// The actor tests start Ergo nodes and timers: every goroutine must be gone
// when the tests end. The one exception is Ergo's SIGTERM watcher, which a
// node starts on StartNode and node.Stop does not end (switching it off with
// SetCTRLC(false) races inside Ergo).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
	)
}
