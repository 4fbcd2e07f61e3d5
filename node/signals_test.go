package node

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// innermost skips file lines and the runtime's frames (shown with GOTRACEBACK=system).
func TestSignalsInnermostFrame(t *testing.T) {
	trace := []byte("runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n" +
		"\t/usr/lib/go/src/runtime/proc.go:435 +0xce\n" +
		"runtime.chanrecv1(0x0?, 0x0?)\n" +
		"\t/usr/lib/go/src/runtime/chan.go:489 +0x12\n" +
		"ergo.services/ergo/node.(*node).SetCTRLC.func1()\n" +
		"\t/root/go/pkg/mod/github.com/ergo-services/ergo@v1.999.310/node/node.go:1555 +0x8b\n")
	assert.Equal(t, "ergo.services/ergo/node.(*node).SetCTRLC.func1()", string(innermost(trace)))
	assert.Equal(t, "ergo.services/ergo/node.(*node).SetCTRLC.func1()", string(innermost(trace[len("runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)\n"):])))
	assert.Nil(t, innermost([]byte("runtime.goexit()\n\t/x.go:1\n")))
}
