package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// TestThroughputGoSenderVersusBEAMSender measures, in one run against one Brain, the metrics/s
// delivered by `send` (payload mode) and by an Erlang node sending the same records pre-encoded
// with term_to_binary, and the CPU seconds each sender spends per million metrics.
func TestThroughputGoSenderVersusBEAMSender(t *testing.T) {
	n := 200000
	if v := os.Getenv("PHAROS_THROUGHPUT_COUNT"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	t.Setenv("PHAROS_COOKIE", b.Cookie)

	// Go sender
	start := time.Now()
	var stdout, stderr bytes.Buffer
	code := runSend(context.Background(), brainArgs(b, "--count", strconv.Itoa(n), "--mode", "payload", "--source", "go"), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	s, ok := b.WaitStats(120*time.Second, func(s erltest.Stats) bool { return s.Sources["go"].Received >= int64(n) })
	require.True(t, ok)
	goDelivered := time.Since(start)
	require.True(t, s.Sources["go"].Exactly(int64(n)), "%+v", s.Sources["go"])
	var sum sendSummary
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum))

	// BEAM sender: same records, pre-encoded before the clock starts
	out := b.Client(fmt.Sprintf(`
		N = %d,
		M = fun(S) -> {metric, <<"pharos.synthetic">>, gauge, float(S),
		               [{<<"host">>, <<"pharos-send">>}, {<<"seq">>, integer_to_binary(S)}],
		               erlang:system_time(millisecond), <<"beam">>} end,
		Bins = [term_to_binary(M(S)) || S <- lists:seq(0, N - 1)],
		{R0, _} = statistics(runtime), T0 = erlang:monotonic_time(microsecond),
		[Brain ! B || B <- Bins],
		yes = gen_server:call({net_kernel, element(2, Brain)}, {is_auth, node()}, 60000),
		{R1, _} = statistics(runtime), T1 = erlang:monotonic_time(microsecond),
		io:format("beam_cpu_ms=~p beam_us=~p~n", [R1 - R0, T1 - T0])`, n))
	s, ok = b.WaitStats(120*time.Second, func(s erltest.Stats) bool { return s.Sources["beam"].Received >= int64(n) })
	require.True(t, ok)
	require.True(t, s.Sources["beam"].Exactly(int64(n)), "%+v", s.Sources["beam"])
	var beamCPUms, beamUs float64
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "beam_cpu_ms="); ok {
			beamCPUms, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(f, "beam_us="); ok {
			beamUs, _ = strconv.ParseFloat(v, 64)
		}
	}
	require.NotZero(t, beamUs, out)

	perM := float64(1e6) / float64(n)
	goCPU, beamCPU := sum.CPUSeconds*perM, beamCPUms/1000*perM
	t.Logf("OTP %s, %d metrics each, payload mode", b.Release.Version, n)
	t.Logf("  Go send:     %8.0f metrics/s written, %8.0f metrics/s delivered to the Brain, %.2f CPU s per million",
		sum.RecordsPerSec, float64(n)/goDelivered.Seconds(), goCPU)
	t.Logf("  BEAM sender: %8.0f metrics/s written, %.2f CPU s per million (encoding excluded)",
		float64(n)/(beamUs/1e6), beamCPU)
	require.Less(t, goCPU, beamCPU, "the Go sender should cost less CPU per metric than the BEAM sender")

	// The Go sender's own ceiling: the same send to a process that drops every message at once.
	b.Eval(`register(null_sink, spawn(fun Loop() -> receive _ -> Loop() end end)), ok`)
	stdout.Reset()
	stderr.Reset()
	args := brainArgs(b, "--count", strconv.Itoa(2*n), "--mode", "payload", "--source", "null")
	args[3] = "null_sink"
	code = runSend(context.Background(), args, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &sum))
	t.Logf("  Go send to a null sink: %8.0f metrics/s, %.2f CPU s per million", sum.RecordsPerSec, sum.CPUSeconds*1e6/float64(2*n))
}
