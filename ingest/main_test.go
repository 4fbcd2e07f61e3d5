package ingest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/etf"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memSink records what it receives. Once it holds capacity records (0: unbounded) it refuses more
// with ErrSinkFull.
type memSink struct {
	mu       sync.Mutex
	capacity int
	recs     []Record
}

func (s *memSink) Deliver(rec Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.capacity > 0 && len(s.recs) >= s.capacity {
		return fmt.Errorf("queue holds %d records: %w", s.capacity, ErrSinkFull)
	}
	s.recs = append(s.recs, rec)
	return nil
}

func (s *memSink) records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recs)
}

func (s *memSink) metrics() []etf.Metric {
	var out []etf.Metric
	for _, r := range s.records() {
		if r.Metric != nil {
			out = append(out, *r.Metric)
		}
	}
	return out
}

func (s *memSink) alerts() []etf.Alert {
	var out []etf.Alert
	for _, r := range s.records() {
		if r.Alert != nil {
			out = append(out, *r.Alert)
		}
	}
	return out
}

// fixedClock is 2023-11-14T22:13:20Z, Unix ms 1700000000000.
func fixedClock() time.Time { return time.UnixMilli(1_700_000_000_000) }

const fixedMs = 1_700_000_000_000

// requireReturnsNil waits up to within for what (Serve, Run) to return on done, and requires nil.
func requireReturnsNil(t *testing.T, done <-chan error, within time.Duration, what string) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(within):
		t.Fatal(what + " did not return")
	}
}
