package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

func brainArgs(b *erltest.Brain, extra ...string) []string {
	return append([]string{"--brain-node", b.Node, "--brain-name", b.Name,
		"--name", "pharos_cli_" + strconv.FormatInt(time.Now().UnixNano()%1000000, 10) + "@127.0.0.1",
		"--epmd-port", strconv.Itoa(b.EpmdPort), "--timeout", "10s"}, extra...)
}

// TestSendDeliversEveryMetricOnceInOrder checks what send delivers, never how fast: its speed
// against an Erlang sender is BenchmarkSendVersusBEAM's (send_bench_test.go, `make bench`).
func TestSendDeliversEveryMetricOnceInOrder(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	t.Setenv("PHAROS_COOKIE", b.Cookie)
	for _, tc := range []struct {
		mode  string
		count int
	}{{"payload", 100000}, {"term", 2000}, {"subject", 2000}} {
		t.Run(tc.mode, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			src := "send-" + tc.mode
			code := runSend(context.Background(), brainArgs(b, "--count", strconv.Itoa(tc.count),
				"--mode", tc.mode, "--source", src), &stdout, &stderr)
			require.Equal(t, 0, code, "stderr: %s", stderr.String())
			assert.Empty(t, stderr.String(), "a successful send prints nothing on stderr")
			var sum sendSummary
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum), stdout.String())
			assert.Equal(t, tc.count, sum.Sent)
			t.Logf("%s", stdout.String())
			s, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool {
				return s.Sources[src].Received >= int64(tc.count)
			})
			require.True(t, ok, "%+v", s.Sources[src])
			assert.True(t, s.Sources[src].Exactly(int64(tc.count)), "%+v", s.Sources[src])
			assert.Equal(t, int64(tc.count), s.Modes[tc.mode])
			assert.NotContains(t, stderr.String(), b.Cookie)
		})
	}
}
