// Package testlog gives tests a zerolog.Logger that writes to t.Log, and nowhere once the test
// has ended (a goroutine that logs after the end of its test does not make it fail or panic).
package testlog

import (
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// New returns a logger at level that writes to t.Log with timestamps, in console form, until
// t's cleanup.
func New(t testing.TB, level zerolog.Level) zerolog.Logger {
	w := &writer{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true}).Level(level).With().Timestamp().Logger()
}

type writer struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
