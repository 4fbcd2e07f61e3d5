package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// BenchmarkAckedThroughput measures, against one reference Brain in one run, the records/s
// processed by the Brain (not merely written to the socket) for:
//
//   - acked: `send --mode acked` with a spill directory (batches of 1,000, a window of 8, at most
//     benchMaxUnacked records handed over ahead of the acknowledgements), timed
//     from its first record until every record is acknowledged, which the Brain does after
//     processing it;
//   - acked_ram: the same without a spill directory;
//   - payload: `send --mode payload`, one distribution message per record, timed from its
//     first record until the Brain has processed the last;
//   - beam: an Erlang client node sending the same records, encoded with term_to_binary before
//     the clock starts, one message per record, timed until a call to the Brain returns (the
//     Brain takes its mailbox in order, so every record was processed by then);
//   - acked_null: `send --mode acked` with a spill directory to a process on the Brain's node
//     that acknowledges every batch without looking at it: the sender's own ceiling;
//   - beam_acked: an Erlang client node sending the same records as pharos_batch messages of
//     1,000 payloads, encoded before the clock starts, with a window of 8 batches in flight, timed
//     until the Brain acknowledges the last: the same batches from a sender that only sends.
//
// Each iteration sends PHAROS_BENCH_COUNT records (default 200,000) per variant; the metrics
// are the totals. It prints the ratios, and for each variant the CPU per record of the sender
// (this Go process, or the Erlang client node, excluding its encoding) and of the Brain's node
// (from /proc, all its threads): on 2 cores shared by both, their sum bounds the rate.
func BenchmarkAckedThroughput(b *testing.B) {
	n := benchCount(b)
	brain := erltest.StartBrain(b, erltest.BrainOptions{})
	b.Setenv("PHAROS_COOKIE", brain.Cookie)
	// A sink that acknowledges every batch unread.
	brain.Eval(`register(pharos_null_acker, spawn(fun Loop() -> receive {pharos_batch, R, S, F, P} -> R ! {pharos_ack, S, F + length(P)}, Loop(); _ -> Loop() end end)), ok`)
	// Warm up, untimed: the first send into a fresh Brain node pays for loading code, growing
	// heaps and tables, and runs 10-25% slower than the next ones.
	benchAckedSend(b, brain, min(n, 100_000), "bench-warmup-disk", true)
	benchAckedSend(b, brain, min(n, 100_000), "bench-warmup-ram", false)
	var res [6]benchResult // acked, acked_ram, payload, beam, acked_null, beam_acked
	total := 0
	for i := 0; b.Loop(); i++ {
		total += n
		settle()
		res[0].add(benchAckedSend(b, brain, n, fmt.Sprintf("bench-acked-%d", i), true))
		settle()
		res[1].add(benchAckedSend(b, brain, n, fmt.Sprintf("bench-acked-ram-%d", i), false))
		settle()
		res[2].add(benchPayloadSend(b, brain, n, fmt.Sprintf("bench-payload-%d", i)))
		settle()
		res[3].add(benchBEAMSend(b, brain, n, fmt.Sprintf("bench-beam-%d", i)))
		settle()
		res[4].add(benchAckedNull(b, brain, n))
		settle()
		res[5].add(benchBEAMBatches(b, brain, n, fmt.Sprintf("bench-beam-acked-%d", i)))
	}
	rate := func(r benchResult) float64 { return float64(total) / r.wall.Seconds() }
	acked, ram, payload, beam, null, beamAcked := rate(res[0]), rate(res[1]), rate(res[2]), rate(res[3]), rate(res[4]), rate(res[5])
	b.ReportMetric(acked, "acked_rec/s")
	b.ReportMetric(ram, "acked_ram_rec/s")
	b.ReportMetric(payload, "payload_rec/s")
	b.ReportMetric(beam, "beam_rec/s")
	b.ReportMetric(null, "acked_null_rec/s")
	b.ReportMetric(beamAcked, "beam_acked_rec/s")
	b.ReportMetric(beamAcked/payload, "beam_acked/payload")
	b.ReportMetric(acked/beamAcked, "acked/beam_acked")
	b.ReportMetric(acked/payload, "acked/payload")
	b.ReportMetric(acked/beam, "acked/beam")
	perRecord := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(total) }
	var cpu strings.Builder
	for i, v := range []string{"acked", "acked_ram", "payload", "beam", "acked_null", "beam_acked"} {
		sender, brainCPU := perRecord(res[i].sender), perRecord(res[i].brain)
		b.ReportMetric(sender, v+"_sender_cpu_us/rec")
		b.ReportMetric(brainCPU, v+"_brain_cpu_us/rec")
		fmt.Fprintf(&cpu, "; %s %.2f + %.2f", v, sender, brainCPU)
	}
	b.Logf("OTP %s, %d records per variant: acked %.0f/s, acked (RAM) %.0f/s, payload %.0f/s, BEAM sender %.0f/s; acked/payload %.1fx, acked/BEAM %.1fx; acked into a sink that does not process: %.0f/s",
		brain.Release.Version, total, acked, ram, payload, beam, acked/payload, acked/beam, null)
	b.Logf("an Erlang node sending the same records as acked batches (pre-encoded, 8 in flight): %.0f/s, %.1fx payload (10x payload is %.0f/s); acked with a spill directory makes %.0f%% of it, in RAM %.0f%%",
		beamAcked, beamAcked/payload, 10*payload, 100*acked/beamAcked, 100*ram/beamAcked)
	b.Logf("CPU per record, sender + Brain node, in µs%s", cpu.String())
}

// benchResult is what one variant cost: the time it took and the CPU time the sender and the
// Brain's node used meanwhile.
type benchResult struct {
	wall, sender, brain time.Duration
}

func (r *benchResult) add(o benchResult) {
	r.wall += o.wall
	r.sender += o.sender
	r.brain += o.brain
}

// settle starts a variant on a quiet machine: the dirty pages an earlier variant's spill
// directory left are written back now (sync), not by the kernel in the middle of the next
// variant, and the Go heap is collected.
func settle() {
	syscall.Sync()
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
}

// benchMaxUnacked bounds the records the acked variants' generator hands over ahead of the
// acknowledgements (send --max-unacked), as an operator bounds a backlog: unbounded, the
// generator runs millions of records ahead of the Brain, and the sender pays for holding them
// (RAM and GC, or reading them back from disk) instead of for delivering. 20,000 is 2.5 windows
// of batches in flight (8 x 1,000), and its records (about 3 MB) fit in the spill log's
// in-memory tail (4 MiB), as a daemon's do when it keeps up with its inputs.
const benchMaxUnacked = 20_000

// benchAckedSend runs `send --mode acked` and returns its deliver_seconds: from the first
// record handed over until the last is acknowledged, which the Brain does once it processed it
// (starting and closing the node are not counted, in any variant).
func benchAckedSend(b *testing.B, brain *erltest.Brain, n int, src string, disk bool) benchResult {
	b.Helper()
	args := ackedSendArgs(brain, "--count", strconv.Itoa(n), "--source", src, "--timeout", "300s",
		"--max-unacked", strconv.Itoa(benchMaxUnacked))
	if disk {
		args = append(args, "--spill-dir", b.TempDir())
	}
	r := runAckedForBench(b, brain, args)
	if s := brain.Stats().Sources[src]; !s.Exactly(int64(n)) {
		b.Fatalf("Brain: %+v", s)
	}
	return r
}

func benchAckedNull(b *testing.B, brain *erltest.Brain, n int) benchResult {
	b.Helper()
	args := ackedSendArgs(brain, "--count", strconv.Itoa(n), "--source", "bench-null", "--timeout", "300s",
		"--max-unacked", strconv.Itoa(benchMaxUnacked), "--spill-dir", b.TempDir())
	args[3] = "pharos_null_acker" // --brain-name
	return runAckedForBench(b, brain, args)
}

// runAckedForBench runs `send --mode acked`: its deliver_seconds, its deliver_cpu_seconds and
// the Brain node's CPU during the whole command.
func runAckedForBench(b *testing.B, brain *erltest.Brain, args []string) benchResult {
	b.Helper()
	var stdout, stderr bytes.Buffer
	brain0 := brain.CPUTime()
	if code := runSend(context.Background(), args, &stdout, &stderr); code != 0 {
		b.Fatalf("send --mode acked: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	brainCPU := brain.CPUTime() - brain0
	var sum ackedSendSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.DeliverSeconds <= 0 {
		b.Fatalf("send --mode acked: summary %q: %v", stdout.String(), err)
	}
	return benchResult{wall: seconds(sum.DeliverSeconds), sender: seconds(sum.DeliverCPUSeconds), brain: brainCPU}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// benchPayloadSend runs `send --mode payload` and returns the time from its first record until
// the Brain processed the last: send's own seconds run from the first record until a round trip
// to the Brain's node (every record is then in the Brain's mailbox), and a call to the Brain
// made after that returns once it has taken everything queued before it.
func benchPayloadSend(b *testing.B, brain *erltest.Brain, n int, src string) benchResult {
	b.Helper()
	args := ackedSendArgs(brain, "--count", strconv.Itoa(n), "--source", src, "--timeout", "60s")
	args[5] = "payload" // --mode
	var stdout, stderr bytes.Buffer
	brain0 := brain.CPUTime()
	if code := runSend(context.Background(), args, &stdout, &stderr); code != 0 {
		b.Fatalf("send --mode payload: exit %d\n%s", code, stderr.String())
	}
	returned := time.Now()
	var sum sendSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Seconds <= 0 {
		b.Fatalf("send --mode payload: summary %q: %v", stdout.String(), err)
	}
	if out := brain.Eval(fmt.Sprintf("gen_server:call(%s, ping, infinity)", brain.Name)); out != "pong" {
		b.Fatalf("Brain ping: %q", out)
	}
	d := time.Since(returned) + seconds(sum.Seconds)
	brainCPU := brain.CPUTime() - brain0
	if s := brain.Stats().Sources[src]; !s.Exactly(int64(n)) {
		b.Fatalf("Brain: %+v", s)
	}
	return benchResult{wall: d, sender: seconds(sum.CPUSeconds), brain: brainCPU}
}

// beamRecordFun binds M, in an Erlang client node, to a fun that makes record S of source Src
// as `pharos-node send` generates it.
const beamRecordFun = `M = fun(S) -> {metric, <<"pharos.synthetic">>, gauge, float(S),
		               [{<<"host">>, <<"pharos-send">>}, {<<"seq">>, integer_to_binary(S)}],
		               erlang:system_time(millisecond), Src} end,`

// benchBEAMBatches sends n records from an Erlang client node as acked-mode batches of 1,000,
// 8 in flight, and returns the time until the Brain acknowledges the last.
func benchBEAMBatches(b *testing.B, brain *erltest.Brain, n int, src string) benchResult {
	b.Helper()
	brain0 := brain.CPUTime()
	out := brain.Client(fmt.Sprintf(`
		N = %d, K = 1000, Src = <<"%s">>,
		`+beamRecordFun+`
		Batches = [{pharos_batch, self(), Src, F, [term_to_binary(M(S)) || S <- lists:seq(F, min(F + K, N) - 1)]}
		           || F <- lists:seq(0, N - 1, K)],
		statistics(runtime),
		T0 = erlang:monotonic_time(microsecond),
		Send = fun Loop([], 0) -> ok;
		           Loop([B | Bs], InFlight) when InFlight < 8 -> Brain ! B, Loop(Bs, InFlight + 1);
		           Loop(Bs, InFlight) -> receive {pharos_ack, Src, _} -> Loop(Bs, InFlight - 1) after 300000 -> exit(no_ack) end
		       end,
		ok = Send(Batches, 0),
		T1 = erlang:monotonic_time(microsecond),
		{_, CpuMs} = statistics(runtime),
		io:format("beam_us=~p cpu_ms=~p~n", [T1 - T0, CpuMs])`, n, src))
	brainCPU := brain.CPUTime() - brain0
	us, cpuMs := clientTimes(b, out)
	if s := brain.Stats().Sources[src]; !s.Exactly(int64(n)) {
		b.Fatalf("Brain: %+v", s)
	}
	return benchResult{wall: time.Duration(us * float64(time.Microsecond)), sender: seconds(cpuMs / 1000), brain: brainCPU}
}

// clientTimes reads the beam_us= and cpu_ms= a client node printed.
func clientTimes(b *testing.B, out string) (us, cpuMs float64) {
	b.Helper()
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "beam_us="); ok {
			us, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(f, "cpu_ms="); ok {
			cpuMs, _ = strconv.ParseFloat(v, 64)
		}
	}
	if us == 0 {
		b.Fatalf("BEAM sender: %q", out)
	}
	return us, cpuMs
}

func benchBEAMSend(b *testing.B, brain *erltest.Brain, n int, src string) benchResult {
	b.Helper()
	// The client node's own CPU is statistics(runtime) around the send (its start and the
	// encoding are not counted); the Brain's is read around the whole client run.
	brain0 := brain.CPUTime()
	out := brain.Client(fmt.Sprintf(`
		N = %d, Src = <<"%s">>,
		`+beamRecordFun+`
		Bins = [term_to_binary(M(S)) || S <- lists:seq(0, N - 1)],
		statistics(runtime),
		T0 = erlang:monotonic_time(microsecond),
		[Brain ! B || B <- Bins],
		pong = gen_server:call(Brain, ping, 300000),
		T1 = erlang:monotonic_time(microsecond),
		{_, CpuMs} = statistics(runtime),
		io:format("beam_us=~p cpu_ms=~p~n", [T1 - T0, CpuMs])`, n, src))
	brainCPU := brain.CPUTime() - brain0
	us, cpuMs := clientTimes(b, out)
	if s := brain.Stats().Sources[src]; !s.Exactly(int64(n)) {
		b.Fatalf("Brain: %+v", s)
	}
	return benchResult{wall: time.Duration(us * float64(time.Microsecond)), sender: seconds(cpuMs / 1000), brain: brainCPU}
}
