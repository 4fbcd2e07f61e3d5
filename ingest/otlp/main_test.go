package otlp_test

import (
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (servers, the SDK's readers and exporters, an agent's node) must
// be gone when the tests end, except Ergo's SIGTERM watcher, which node.Stop does not end, and
// net/http's idle keep-alive connections of the default client.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
		goleak.IgnoreAnyFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// runtimeMem reads the bytes the process has allocated so far.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.total = ms.TotalAlloc
}
