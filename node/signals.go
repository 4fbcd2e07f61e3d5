package node

// Signal ownership. Every Ergo node (v3.1.0) ends ergo.StartNode with SetCTRLC(true): a
// goroutine registers a channel for SIGINT and SIGTERM with os/signal and, on the first one,
// calls signal.Reset() for the whole process and stops the node at once (its processes end
// without draining). SetCTRLC(false) cannot undo it safely: it closes a channel that may still
// be registered with os/signal (a later signal then panics) and races with the registration.
// os/signal cannot remove one channel it does not know, so takeSignals waits until that
// goroutine has registered (it is then parked receiving from its channel), removes every
// registration for the two signals at once (signal.Ignore) and registers the caller's channel.
// Ergo's goroutine stays parked for the life of the process and never sees a signal.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// ergoSignalFunc is the function of the goroutine Ergo's SetCTRLC starts.
const ergoSignalFunc = "ergo.services/ergo/node.(*node).SetCTRLC.func1("

// ownedSignals are the signals Ergo takes with every node.
func ownedSignals() []os.Signal { return []os.Signal{os.Interrupt, syscall.SIGTERM} }

// takeSignals makes SIGINT and SIGTERM go to ch only, once Ergo's handler of every node started
// so far has registered (ctx bounds that wait).
func takeSignals(ctx context.Context, ch chan<- os.Signal) error {
	for wait := time.Duration(0); ; wait = min(2*wait+10*time.Microsecond, 5*time.Millisecond) {
		if ergoSignalHandlersParked() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: Ergo's SIGINT/SIGTERM handler did not start: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	// Ignore, not Reset: between the two calls a signal is dropped instead of killing the
	// process with the default action.
	signal.Ignore(ownedSignals()...)
	signal.Notify(ch, ownedSignals()...)
	return nil
}

// ergoSignalHandlersParked reports whether every goroutine running Ergo's signal handler is
// parked receiving from its channel, that is, has registered it with os/signal.
func ergoSignalHandlersParked() bool {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte(ergoSignalFunc)) {
			continue
		}
		header, frames, _ := bytes.Cut(g, []byte("\n"))
		// "goroutine 7 [chan receive]:" with Ergo's function as the innermost frame outside
		// the runtime (GOTRACEBACK=system shows runtime frames too)
		if !bytes.Contains(header, []byte("[chan receive")) || !bytes.HasPrefix(innermost(frames), []byte(ergoSignalFunc)) {
			return false
		}
	}
	return true
}

// innermost returns the first frame of a goroutine's trace that is not the runtime's.
func innermost(frames []byte) []byte {
	for _, line := range bytes.Split(frames, []byte("\n")) {
		if len(line) == 0 || line[0] == '\t' || bytes.HasPrefix(line, []byte("runtime.")) {
			continue // a file:line, or a runtime frame
		}
		return line
	}
	return nil
}
