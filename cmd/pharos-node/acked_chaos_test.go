package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// chaosChildEnv carries the arguments of `pharos-node send` to a child process of the chaos
// test (the test binary re-executed; TestMain hands it to runChaosChild), so that it can be
// killed with -9 and started again.
const chaosChildEnv = "PHAROS_ACKED_CHAOS_CHILD_ARGS"

// runChaosChild is `pharos-node send` with the arguments in raw (JSON), in a child process of
// TestAckedChaos; it exits with send's code and never returns.
func runChaosChild(raw string) {
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runSend(ctx, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// chaosChild is one run of `send` in a child process.
type chaosChild struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

func startChaosChild(t *testing.T, cookie string, args []string) *chaosChild {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	c := &chaosChild{done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(os.Environ(), chaosChildEnv+"="+string(raw), "PHAROS_COOKIE="+cookie)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := c.cmd.Wait()
		c.code = c.cmd.ProcessState.ExitCode()
		_ = err
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	})
	return c
}

func (c *chaosChild) kill9(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

// TestAckedChaos: `send --mode acked` streams N records (500,000 by default;
// PHAROS_CHAOS_COUNT changes it) through a spill directory into a Brain that keeps its
// deduplication in a state directory, while the Brain node is killed with -9 and restarted
// three times, the Brain process crashes (its supervisor restarts it), the Brain is
// SIGSTOPped past the tick time (net_ticktime 4 on both sides) and continued, and the sender
// itself is killed with -9 and started again on the same spill directory. At the end the Brain
// has processed every record exactly once, in order, and the sender exited 0.
func TestAckedChaos(t *testing.T) {
	n := 500_000
	if v := os.Getenv("PHAROS_CHAOS_COUNT"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("PHAROS_CHAOS_COUNT: %v", err)
		}
	}
	const tick = 4 * time.Second
	b := erltest.StartBrain(t, erltest.BrainOptions{StateDir: t.TempDir(),
		ErlFlags: []string{"-kernel", "net_ticktime", strconv.Itoa(int(tick.Seconds()))}})
	dir := t.TempDir()
	const src = "chaos"
	start := time.Now()
	var mu sync.Mutex
	var events []string
	event := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		e := fmt.Sprintf("%6.2fs ", time.Since(start).Seconds()) + fmt.Sprintf(format, args...)
		events = append(events, e)
		t.Log(e)
	}
	args := func() []string {
		return ackedSendArgs(b, "--spill-dir", dir, "--count", strconv.Itoa(n), "--source", src,
			"--timeout", "240s", "--tick-time", tick.String(), "--ack-timeout", "3s", "-v",
			// Appending keeps pace with the Brain, so that the sender is killed mid-stream.
			"--max-unacked", strconv.Itoa(max(n/20, 10_000)))
	}
	child := startChaosChild(t, b.Cookie, args())

	// progress waits until the Brain has processed frac of the records, in order.
	progress := func(frac float64) int64 {
		t.Helper()
		want := int64(frac * float64(n))
		s, ok := b.WaitStats(120*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Next >= want })
		if !ok {
			t.Fatalf("no progress to %d: Brain %+v\nsender stderr:\n%s", want, s.Sources[src], child.stderr.String())
		}
		if next := s.Sources[src].Next; next >= int64(n) {
			t.Fatalf("the stream ended (%d records) before the chaos did: raise PHAROS_CHAOS_COUNT", next)
		}
		return s.Sources[src].Next
	}
	restartBrain := func(k int) {
		b.Kill9()
		event("Brain node killed with -9 (%d of 3)", k)
		time.Sleep(300 * time.Millisecond)
		b.Restart()
		event("Brain node restarted")
	}

	event("at %d: start", progress(0.05))
	restartBrain(1)
	event("at %d", progress(0.15))
	b.Crash()
	event("Brain process crashed (its supervisor restarts it)")
	event("at %d", progress(0.25))
	child.kill9(t)
	event("sender killed with -9")
	killedStderr := child.stderr.String()
	child = startChaosChild(t, b.Cookie, args())
	event("sender started again on the same spill directory")
	event("at %d", progress(0.40))
	restartBrain(2)
	event("at %d", progress(0.55))
	b.Stop()
	event("Brain SIGSTOPped")
	time.Sleep(tick + 2*time.Second)
	b.Cont()
	event("Brain continued")
	event("at %d", progress(0.70))
	restartBrain(3)

	select {
	case <-child.done:
	case <-time.After(240 * time.Second):
		t.Fatalf("sender still running\n%s", child.stderr.String())
	}
	event("sender exited with %d: %s", child.code, bytes.TrimSpace(child.stdout.Bytes()))
	if child.code != 0 {
		t.Fatalf("sender exit %d\nstderr:\n%s", child.code, child.stderr.String())
	}
	var sum ackedSendSummary
	if err := json.Unmarshal(child.stdout.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	// The SIGSTOP (6 s) outlasts the ack timeout (3 s): the sender gave up on the stuck Brain.
	if !strings.Contains(child.stderr.String(), fsm.ErrAckTimeout.Error()) {
		t.Errorf("no %q in the sender's log:\n%s", fsm.ErrAckTimeout, child.stderr.String())
	}
	if sum.ResumedAt == 0 || sum.ResumedAt >= uint64(n) {
		t.Fatalf("the second sender resumed at %d: the first was not killed mid-stream\n%s", sum.ResumedAt, killedStderr)
	}
	st := b.Stats()
	s := st.Sources[src]
	t.Logf("OTP %s: %d records in %.1fs; Brain: %+v; NextSeq %d; Brain starts %d",
		b.Release.Version, n, time.Since(start).Seconds(), s, st.Acked[sum.SourceID], st.BrainStarts)
	if !s.Exactly(int64(n)) || st.Acked[sum.SourceID] != int64(n) || st.Invalid != 0 {
		t.Fatalf("Brain: %+v, NextSeq %d, invalid %d; want exactly %d once each in order", s, st.Acked[sum.SourceID], st.Invalid, n)
	}
}
