package main

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// ackedSendArgs are the arguments of `send --mode acked` against b.
func ackedSendArgs(b *erltest.Brain, extra ...string) []string {
	return append([]string{"--brain-node", b.Node, "--brain-name", b.Name, "--mode", "acked",
		"--name", "pharos_acked_" + strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36) + "@127.0.0.1",
		"--epmd-port", strconv.Itoa(b.EpmdPort)}, extra...)
}

func runAckedSend(t *testing.T, args []string) (int, ackedSendSummary, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runSend(context.Background(), args, &stdout, &stderr)
	var sum ackedSendSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary %q: %v (exit %d, stderr %s)", stdout.String(), err, code, stderr.String())
	}
	t.Logf("exit %d: %s", code, stdout.String())
	return code, sum, stderr.String()
}

// send --mode acked exits 0 once every record is acknowledged; the Brain has each once, in
// order; a second run on the same spill directory with the same --count has nothing left to
// send; a run whose Brain is gone exits 1 with its summary when --timeout passes, and the next
// run, the Brain back, resumes where the directory says.
func TestSendAckedResumesOnItsSpillDirectory(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{StateDir: t.TempDir()})
	t.Setenv("PHAROS_COOKIE", b.Cookie)
	dir := t.TempDir()
	const n = 20_000

	code, sum, stderr := runAckedSend(t, ackedSendArgs(b, "--spill-dir", dir, "--count", strconv.Itoa(n),
		"--source", "acked-resume", "--timeout", "60s"))
	if code != 0 || !sum.Complete || sum.Stored != n || sum.Acknowledged != n || sum.AcknowledgedThisRun != n || sum.Pending != 0 || sum.ResumedAt != 0 {
		t.Fatalf("first run: exit %d, %+v\n%s", code, sum, stderr)
	}
	// A complete run says how long delivering took, and the CPU it cost (at most every core's).
	if sum.DeliverSeconds <= 0 || sum.DeliverSeconds > sum.Seconds || sum.DeliverCPUSeconds <= 0 ||
		sum.DeliverCPUSeconds > sum.CPUSeconds ||
		sum.DeliverCPUSeconds > float64(runtime.NumCPU())*sum.DeliverSeconds+0.05 {
		t.Fatalf("first run: delivery figures %+v", sum)
	}
	st := b.Stats()
	if !st.Sources["acked-resume"].Exactly(n) || st.Acked[sum.SourceID] != n {
		t.Fatalf("Brain: %+v, acked %v", st.Sources["acked-resume"], st.Acked)
	}

	code, sum2, stderr := runAckedSend(t, ackedSendArgs(b, "--spill-dir", dir, "--count", strconv.Itoa(n),
		"--source", "acked-resume", "--timeout", "20s"))
	if code != 0 || sum2.Stored != 0 || sum2.ResumedAt != n || sum2.SourceID != sum.SourceID || sum2.Acknowledged != n {
		t.Fatalf("second run: exit %d, %+v\n%s", code, sum2, stderr)
	}

	// The Brain gone: records wait on disk; the run times out with its summary.
	b.Kill9()
	code, sum3, _ := runAckedSend(t, ackedSendArgs(b, "--spill-dir", dir, "--count", strconv.Itoa(2*n),
		"--source", "acked-resume", "--timeout", "2s"))
	if code != 1 || sum3.Complete || sum3.Stored != n || sum3.Pending != n || sum3.AcknowledgedThisRun != 0 || sum3.Acknowledged != n ||
		sum3.DeliverSeconds != 0 || sum3.DeliverCPUSeconds != 0 {
		t.Fatalf("run without a Brain: exit %d, %+v", code, sum3)
	}
	b.Restart()
	code, sum4, stderr := runAckedSend(t, ackedSendArgs(b, "--spill-dir", dir, "--count", strconv.Itoa(2*n),
		"--source", "acked-resume", "--timeout", "60s"))
	if code != 0 || sum4.Stored != 0 || sum4.ResumedAt != 2*n || sum4.AcknowledgedThisRun != n || sum4.Acknowledged != 2*n {
		t.Fatalf("run after the Brain came back: exit %d, %+v\n%s", code, sum4, stderr)
	}
	if s := b.Stats().Sources["acked-resume"]; !s.Exactly(2 * n) {
		t.Fatalf("Brain: %+v, want exactly %d", s, 2*n)
	}
}

// Without --spill-dir the mode works in RAM.
func TestSendAckedWithoutSpillDirectory(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	t.Setenv("PHAROS_COOKIE", b.Cookie)
	const n = 10_000
	code, sum, stderr := runAckedSend(t, ackedSendArgs(b, "--count", strconv.Itoa(n), "--source", "acked-ram", "--timeout", "30s"))
	if code != 0 || sum.Acknowledged != n {
		t.Fatalf("exit %d, %+v\n%s", code, sum, stderr)
	}
	if s := b.Stats().Sources["acked-ram"]; !s.Exactly(n) {
		t.Fatalf("Brain: %+v", s)
	}
}

// Flags that make no sense together are refused before anything starts (exit 2).
func TestSendAckedUsage(t *testing.T) {
	base := []string{"--brain-node", "brain@127.0.0.1", "--brain-name", "pharos_brain", "--count", "10"}
	for name, extra := range map[string][]string{
		"rate with acked":         {"--mode", "acked", "--rate", "100"},
		"spill-dir without acked": {"--mode", "payload", "--spill-dir", t.TempDir()},
		"bad sync policy":         {"--mode", "acked", "--spill-sync", "sometimes"},
		"zero window":             {"--mode", "acked", "--window", "0"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runSend(context.Background(), append(append([]string{}, base...), extra...), &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr %s", code, stderr.String())
			}
			t.Log(strings.TrimSpace(stderr.String()))
		})
	}
}
