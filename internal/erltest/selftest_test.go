package erltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := CheckNoLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// erlMetric is an Erlang fun building a valid docs/wire.md metric with a seq tag for a source.
const erlMetric = `M = fun(Src, S) -> {metric, <<"cpu.load">>, gauge, 0.5 + S, [{<<"host">>, <<"h1">>}, {<<"seq">>, integer_to_binary(S)}], 1700000000000 + S, Src} end, `

func TestBrainReceivesEveryDeliveryMode(t *testing.T) {
	b := StartBrain(t, BrainOptions{Name: "brain_modes"})
	const n = 200
	out := b.Client(erlMetric + fmt.Sprintf(`
		N = %d,
		[Brain ! term_to_binary(M(<<"payload">>, S)) || S <- lists:seq(0, N - 1)],
		[Brain ! M(<<"term">>, S) || S <- lists:seq(0, N - 1)],
		[Brain ! {brain_modes, term_to_binary(M(<<"subject">>, S))} || S <- lists:seq(0, N - 1)],
		Alert = {alert, <<"disk">>, critical, <<"disk full">>, [{<<"seq">>, <<"0">>}], 1, <<"alerts">>},
		Brain ! term_to_binary(Alert),
		Bins = [term_to_binary(M(<<"acked">>, S)) || S <- lists:seq(0, N - 1)],
		{First, Second} = lists:split(N div 2, Bins),
		Brain ! {pharos_batch, self(), <<"sid-1">>, 0, First},
		receive {pharos_ack, <<"sid-1">>, A1} -> io:format("ack1=~p~n", [A1]) after 5000 -> exit(no_ack1) end,
		%% a resend overlapping what was acknowledged: the duplicates are dropped
		Brain ! {pharos_batch, self(), <<"sid-1">>, N div 2 - 10, lists:nthtail(N div 2 - 10, First) ++ Second},
		receive {pharos_ack, <<"sid-1">>, A2} -> io:format("ack2=~p~n", [A2]) after 5000 -> exit(no_ack2) end,
		%% a batch beyond NextSeq is not processed and re-acknowledges the old NextSeq
		Brain ! {pharos_batch, self(), <<"sid-1">>, N + 5, [term_to_binary(M(<<"acked">>, N + 5))]},
		receive {pharos_ack, <<"sid-1">>, A3} -> io:format("ack3=~p~n", [A3]) after 5000 -> exit(no_ack3) end,
		%% invalid records, one per reason
		Brain ! <<131, 200, 1, 2>>,
		Brain ! {metric, <<>>, gauge, 1.0, [], 1, <<"bad">>},
		Brain ! {metric, <<"x">>, gauge, 1, [], 1, <<"bad">>},
		Brain ! {metric, <<"x">>, gauge, 1.0, [{<<"k">>, <<"a">>}, {<<"k">>, <<"b">>}], 1, <<"bad">>},
		Brain ! {metric, x, gauge, 1.0, [], 1, <<"bad">>},
		Brain ! {metric, <<"x">>, bogus, 1.0, [], 1, <<"bad">>},
		Brain ! {alert, <<"x">>, fatal, <<"m">>, [], 1, <<"bad">>},
		Brain ! {metric, <<"x">>, gauge, 1.0, [], 1, <<255, 254>>},
		Brain ! hello,
		Brain ! term_to_binary({metric, <<"x">>}),
		%% a round trip, so everything above has been handled when we return
		pong = gen_server:call(Brain, ping)
	`, n))
	t.Logf("client: %s", out)
	assert.Contains(t, out, fmt.Sprintf("ack1=%d", n/2))
	assert.Contains(t, out, fmt.Sprintf("ack2=%d", n))
	assert.Contains(t, out, fmt.Sprintf("ack3=%d", n))

	s := b.Stats()
	for _, src := range []string{"payload", "term", "subject", "acked"} {
		assert.Truef(t, s.Sources[src].Exactly(n), "source %s: %+v", src, s.Sources[src])
	}
	assert.Equal(t, int64(4*n+1), s.Received)
	assert.Equal(t, int64(4*n), s.Metrics)
	assert.Equal(t, int64(1), s.Alerts)
	assert.Equal(t, map[string]int64{"payload": n + 1, "term": n, "subject": n, "acked": n}, s.Modes)
	assert.Equal(t, map[string]int64{"sid-1": n}, s.Acked)
	assert.Equal(t, int64(10), s.Invalid)
	assert.Equal(t, map[string]int64{
		"bad_etf": 1, "bad_name": 2, "bad_value": 1, "bad_tags": 1, "bad_kind": 1, "bad_severity": 1,
		"bad_source": 1, "unknown_message": 1, "not_a_record": 1,
	}, s.InvalidReasons)
}

func TestBrainReportsGapsDuplicatesAndReorders(t *testing.T) {
	b := StartBrain(t, BrainOptions{})
	b.Client(erlMetric + `
		[Brain ! M(<<"s">>, S) || S <- [0, 1, 3, 2, 2, 6, 5]],
		pong = gen_server:call(Brain, ping)`)
	s := b.Stats().Sources["s"]
	assert.Equal(t, SourceStats{Received: 7, Unique: 6, Duplicates: 1, Reorders: 2, Next: 4, MaxSeq: 6, Missing: 1}, s)
	assert.False(t, s.Exactly(7))

	// A stream whose start is lost stays cheap to track: 20,000 records above a hole.
	b.Client(erlMetric + `
		[Brain ! M(<<"late">>, S) || S <- lists:seq(1, 20000)],
		pong = gen_server:call(Brain, ping)`)
	late := b.Stats().Sources["late"]
	assert.Equal(t, SourceStats{Received: 20000, Unique: 20000, Next: 0, MaxSeq: 20000, Missing: 1}, late)

	// An acked batch is accounted for at once; out-of-order tags inside it count as above.
	b.Client(erlMetric + `
		Bins = [term_to_binary(M(<<"batch">>, S)) || S <- [0, 1, 2, 5, 6, 3]],
		Brain ! {pharos_batch, self(), <<"sid-b">>, 0, Bins},
		receive {pharos_ack, <<"sid-b">>, 6} -> ok after 5000 -> exit(no_ack) end`)
	assert.Equal(t, SourceStats{Received: 6, Unique: 6, Reorders: 1, Next: 4, MaxSeq: 6, Missing: 1}, b.Stats().Sources["batch"])

	b.Reset()
	assert.Empty(t, b.Stats().Sources)
}

func TestBrainSurvivesProcessCrashAndNodeRestart(t *testing.T) {
	b := StartBrain(t, BrainOptions{StateDir: t.TempDir()})
	batch := func(first, n int) string {
		return b.Client(erlMetric + fmt.Sprintf(`
			Bins = [term_to_binary(M(<<"a">>, S)) || S <- lists:seq(%d, %d)],
			Brain ! {pharos_batch, self(), <<"sid">>, %d, Bins},
			receive {pharos_ack, <<"sid">>, A} -> io:format("ack=~p", [A]) after 5000 -> exit(no_ack) end`,
			first, first+n-1, first))
	}
	require.Equal(t, "ack=10", batch(0, 10))

	b.Crash()
	s, ok := b.WaitStats(10*time.Second, func(s Stats) bool { return s.BrainStarts == 2 })
	require.True(t, ok, "Brain process not restarted: %+v", s)
	assert.True(t, s.Sources["a"].Exactly(10), "counts survive a process crash: %+v", s.Sources["a"])

	b.Kill9()
	b.Restart()
	// the resend of an acknowledged batch after a node restart is deduplicated
	require.Equal(t, "ack=15", batch(5, 10))
	s = b.Stats()
	assert.True(t, s.Sources["a"].Exactly(15), "state survives kill -9: %+v", s.Sources["a"])
	assert.Equal(t, map[string]int64{"sid": 15}, s.Acked)
}

func TestBrainStopContAndSlow(t *testing.T) {
	b := StartBrain(t, BrainOptions{ErlFlags: []string{"-kernel", "net_ticktime", "4"}})
	assert.Equal(t, "4", b.Eval("net_kernel:get_net_ticktime()"))
	b.SetDelay(5)
	assert.Equal(t, int64(5), b.Stats().DelayMs)

	b.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := b.control(ctx, "ping")
	cancel()
	require.Error(t, err, "a SIGSTOPped Brain must not answer")
	b.Cont()
	assert.Equal(t, "pong", b.mustControl("ping"))
	assert.True(t, strings.HasPrefix(b.Eval("node()"), "'brain_"))
}

func TestBrainCPUTime(t *testing.T) {
	b := StartBrain(t, BrainOptions{})
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", b.Pid()))
	require.NoError(t, err)
	assert.Equal(t, "beam.smp", strings.TrimSpace(string(comm)), "Pid is the BEAM itself")
	before := b.CPUTime()
	b.Eval("lists:foldl(fun(X, A) -> erlang:phash2({X, A}) end, 0, lists:seq(1, 3000000))")
	used := b.CPUTime() - before
	assert.Greater(t, used, 20*time.Millisecond, "3 million hashes cost the Brain CPU")
	assert.Less(t, used, 30*time.Second)
}

func TestBrainBuildsWithItsOwnRelease(t *testing.T) {
	rel := FromEnv(t)
	ebin, err := BuildBrain(rel)
	require.NoError(t, err)
	assert.Contains(t, ebin, "otp-"+rel.Major+"-")
	b := StartBrain(t, BrainOptions{})
	assert.Equal(t, `"`+rel.Major+`"`, b.Eval("erlang:system_info(otp_release)"))
}

func TestReapOrphansKillsWhatADeadBinaryLeft(t *testing.T) {
	// A dead "test binary": a process that has exited, whose pid is then free.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	orphan := exec.Command("sleep", "60")
	orphan.Env = append(os.Environ(), ownerEnv+"="+strconv.Itoa(dead.Process.Pid))
	require.NoError(t, orphan.Start())
	ours := exec.Command("sleep", "60") // this binary's own: left alone
	ours.Env = append(os.Environ(), ownerEnv+"="+owner())
	require.NoError(t, ours.Start())
	defer func() { _ = ours.Process.Kill(); _ = ours.Wait() }()

	assert.GreaterOrEqual(t, ReapOrphans(), 1)
	err := orphan.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the orphan was killed")
	assert.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())
	require.NoError(t, ours.Process.Signal(syscall.Signal(0)), "this binary's process still runs")
}

func TestCheckNoLeaksFindsAStraggler(t *testing.T) {
	require.NoError(t, CheckNoLeaks(), "nothing may be running between tests")
	cmd := exec.Command("sleep", "60")
	cmd.Env = append(os.Environ(), ownerEnv+"="+owner())
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	err := CheckNoLeaks()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sleep 60")
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	assert.NoError(t, CheckNoLeaks())
}
