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

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// benchCount is the records per variant of the send benchmarks: PHAROS_BENCH_COUNT, default 500,000.
func benchCount(b *testing.B) int {
	b.Helper()
	v := os.Getenv("PHAROS_BENCH_COUNT")
	if v == "" {
		return 500_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("PHAROS_BENCH_COUNT=%q: want a positive integer", v)
	}
	return n
}

// BenchmarkSendVersusBEAM compares, in one run against one reference Brain, `pharos-node send`
// (payload mode, runSend in this process) with an Erlang client node sending the same records,
// pre-encoded with term_to_binary before its clock starts. Each op is one round: n metrics from
// the Go sender, then n from the Erlang sender (PHAROS_BENCH_COUNT, default 200000), so
// ns/op is the round's wall time including the Erlang node's start; the figures are the metrics:
//
//	go-rec/s, beam-rec/s      metrics/s the Brain processed: its own count, polled every
//	                          millisecond on the Brain node, from its first to its n-th record
//	go-sent/s, beam-sent/s    metrics/s written: from the first send until a round trip to the
//	                          Brain's node returns (every metric is then in the Brain's mailbox)
//	go-cpu-s/M, beam-cpu-s/M  CPU seconds (user + system) the sending OS process spent while
//	                          writing, per million metrics: getrusage here, /proc/self/stat there
//
// The sub-benchmark null-sink sends to a process on the Brain's node that only counts what it
// gets: the senders' own ceilings, without the Brain's decoding; it reports the written rates and
// the CPU only. Every round checks that each metric arrived exactly once and, at the Brain, in
// order. Run it with
//
//	PHAROS_OTP=27 go test ./cmd/pharos-node -run '^$' -bench SendVersusBEAM -benchtime 1x
func BenchmarkSendVersusBEAM(b *testing.B) {
	n := benchCount(b)
	brain := erltest.StartBrain(b, erltest.BrainOptions{})
	b.Setenv("PHAROS_COOKIE", brain.Cookie)
	// The null sink answers gen_server:call(Sink, ping) with {pong, Count} and starts counting again.
	brain.Eval(`register(pharos_bench_sink, spawn(fun() -> (fun Loop(C) -> receive
		{'$gen_call', From, ping} -> gen_server:reply(From, {pong, C}), Loop(0);
		_ -> Loop(C + 1) end end)(0) end)), ok`)
	b.Run("brain", func(b *testing.B) { benchSendRounds(b, brain, brain.Name, n) })
	b.Run("null-sink", func(b *testing.B) { benchSendRounds(b, brain, "pharos_bench_sink", n) })
}

// sendBenchRun is one sender's figures for one round.
type sendBenchRun struct {
	deliveredSec, sentSec, cpuSec float64
}

func (r *sendBenchRun) add(o sendBenchRun) {
	r.deliveredSec += o.deliveredSec
	r.sentSec += o.sentSec
	r.cpuSec += o.cpuSec
}

func benchSendRounds(b *testing.B, brain *erltest.Brain, target string, n int) {
	var goTotal, beamTotal sendBenchRun
	rounds := 0
	for b.Loop() {
		rounds++
		src := fmt.Sprintf("%s-%d", strings.ReplaceAll(target, "_", "-"), rounds)
		goTotal.add(benchGoSender(b, brain, target, "go-"+src, n))
		beamTotal.add(benchBEAMSender(b, brain, target, "beam-"+src, n))
	}
	metrics := float64(n * rounds)
	goRec, beamRec := metrics/goTotal.deliveredSec, metrics/beamTotal.deliveredSec
	goSent, beamSent := metrics/goTotal.sentSec, metrics/beamTotal.sentSec
	goCPU, beamCPU := goTotal.cpuSec*1e6/metrics, beamTotal.cpuSec*1e6/metrics
	b.ReportMetric(goSent, "go-sent/s")
	b.ReportMetric(beamSent, "beam-sent/s")
	b.ReportMetric(goCPU, "go-cpu-s/M")
	b.ReportMetric(beamCPU, "beam-cpu-s/M")
	b.Logf("OTP %s, to %s, %d metrics per sender per round, %d round(s), payload mode", brain.Release.Version, target, n, rounds)
	if target == brain.Name {
		b.ReportMetric(goRec, "go-rec/s")
		b.ReportMetric(beamRec, "beam-rec/s")
		b.Logf("  processed by the Brain: Go send %.0f/s, BEAM sender %.0f/s; go/beam %.2fx", goRec, beamRec, goRec/beamRec)
	}
	b.Logf("  written: Go send %.0f/s, BEAM sender %.0f/s; go/beam %.2fx", goSent, beamSent, goSent/beamSent)
	b.Logf("  sender CPU per million: Go send %.3f s, BEAM sender %.3f s (encoding excluded); beam/go %.2fx", goCPU, beamCPU, beamCPU/goCPU)
}

// benchWatchBrain starts a process on the Brain's node that polls the Brain's count of source
// every millisecond (its row in the reference Brain's ETS table, see pharos_brain_store.erl: the
// full stats would cost the Brain's node more); benchWatchResult returns the seconds from the
// source's first record to its n-th.
func benchWatchBrain(brain *erltest.Brain, source string, n int) {
	brain.Eval(fmt.Sprintf(`Src = <<"%s">>, N = %d,
		Count = fun() -> case ets:lookup(pharos_brain_stats, {seq, Src}) of [{_, V}] -> element(1, V); [] -> 0 end end,
		W = spawn(fun() -> (fun Poll(First) ->
			C = Count(), Now = erlang:monotonic_time(microsecond),
			F = case {C, First} of {0, _} -> First; {_, undefined} -> Now; _ -> First end,
			case C >= N of
				true -> receive {get, From} -> From ! {watched, Now - F} end;
				false -> receive after 1 -> Poll(F) end
			end end)(undefined) end),
		register(pharos_bench_watch, W), ok`, source, n))
}

func benchWatchResult(b *testing.B, brain *erltest.Brain) float64 {
	b.Helper()
	out := brain.Eval(`pharos_bench_watch ! {get, self()}, receive {watched, Us} -> Us after 10000 -> timeout end`)
	us, err := strconv.ParseFloat(out, 64)
	if err != nil || us <= 0 {
		b.Fatalf("the Brain's watcher answered %q", out)
	}
	return us / 1e6
}

// benchCheckArrived fails the benchmark unless the target got exactly n metrics from source (at
// the Brain: exactly once each, in order).
func benchCheckArrived(b *testing.B, brain *erltest.Brain, target, source string, n int) {
	b.Helper()
	if target != brain.Name {
		if out := brain.Eval(`gen_server:call(pharos_bench_sink, ping, 60000)`); out != fmt.Sprintf("{pong,%d}", n) {
			b.Fatalf("%s: the null sink counted %s, want %d", source, out, n)
		}
		return
	}
	s, ok := brain.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[source].Received >= int64(n) })
	if !ok || !s.Sources[source].Exactly(int64(n)) {
		b.Fatalf("%s: the Brain got %+v, want exactly 0..%d once each, in order", source, s.Sources[source], n-1)
	}
}

func benchGoSender(b *testing.B, brain *erltest.Brain, target, source string, n int) sendBenchRun {
	b.Helper()
	toBrain := target == brain.Name
	if toBrain {
		benchWatchBrain(brain, source, n)
	}
	args := brainArgs(brain, "--count", strconv.Itoa(n), "--mode", "payload", "--source", source)
	args[3] = target // --brain-name
	var stdout, stderr bytes.Buffer
	if code := runSend(context.Background(), args, &stdout, &stderr); code != 0 {
		b.Fatalf("send exited with %d: %s", code, stderr.String())
	}
	var sum sendSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Sent != n {
		b.Fatalf("send printed %q (%v), want %d sent", stdout.String(), err, n)
	}
	r := sendBenchRun{deliveredSec: sum.Seconds, sentSec: sum.Seconds, cpuSec: sum.CPUSeconds}
	if toBrain {
		r.deliveredSec = benchWatchResult(b, brain)
	}
	benchCheckArrived(b, brain, target, source, n)
	return r
}

func benchBEAMSender(b *testing.B, brain *erltest.Brain, target, source string, n int) sendBenchRun {
	b.Helper()
	toBrain := target == brain.Name
	if toBrain {
		benchWatchBrain(brain, source, n)
	}
	// The same records as send's (send_cmd.go), term_to_binary'd before the clock starts. CPU is
	// read from /proc/self/stat (utime + stime, in USER_HZ = 100 ticks/s): statistics(runtime)
	// counts user time only.
	out := brain.Client(fmt.Sprintf(`
		N = %d, Src = <<"%s">>, Target = {%s, element(2, Brain)},
		M = fun(S) -> {metric, <<"pharos.synthetic">>, gauge, float(S),
		               [{<<"host">>, <<"pharos-send">>}, {<<"seq">>, integer_to_binary(S)}],
		               erlang:system_time(millisecond), Src} end,
		Bins = [term_to_binary(M(S)) || S <- lists:seq(0, N - 1)],
		Cpu = fun() ->
			{ok, Stat} = file:read_file("/proc/self/stat"),
			[_, Rest] = string:split(Stat, <<") ">>, trailing),
			F = string:split(Rest, <<" ">>, all),
			binary_to_integer(lists:nth(12, F)) + binary_to_integer(lists:nth(13, F)) end,
		C0 = Cpu(), T0 = erlang:monotonic_time(microsecond),
		lists:foreach(fun(B) -> Target ! B end, Bins),
		yes = gen_server:call({net_kernel, element(2, Brain)}, {is_auth, node()}, 120000),
		T1 = erlang:monotonic_time(microsecond), C1 = Cpu(),
		io:format("beam_cpu_ticks=~b beam_sent_us=~b~n", [C1 - C0, T1 - T0])`, n, source, target))
	var ticks, sentUs float64
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "beam_cpu_ticks="); ok {
			ticks, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(f, "beam_sent_us="); ok {
			sentUs, _ = strconv.ParseFloat(v, 64)
		}
	}
	if sentUs <= 0 {
		b.Fatalf("the Erlang sender printed %q", out)
	}
	r := sendBenchRun{deliveredSec: sentUs / 1e6, sentSec: sentUs / 1e6, cpuSec: ticks / 100}
	if toBrain {
		r.deliveredSec = benchWatchResult(b, brain)
	}
	benchCheckArrived(b, brain, target, source, n)
	return r
}
