package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestSendAckedSurvivesExitSignals: a Brain that sends exit(ReplyTo, Reason) to the connection
// manager in the middle of 300,000 acknowledged records. The manager traps exits: normal and
// shutdown from a process it is not linked to are ignored, as a trapping gen_server ignores
// them; kill cannot be trapped, and the manager's supervisor restarts it with its log intact.
// Either way every record reaches the Brain exactly once, in order, and send exits 0 (issue 18:
// one exit signal used to stop delivery for good).
func TestSendAckedSurvivesExitSignals(t *testing.T) {
	for _, reason := range []string{"normal", "shutdown", "kill"} {
		t.Run(reason, func(t *testing.T) {
			b := erltest.StartBrain(t, erltest.BrainOptions{StateDir: t.TempDir()})
			t.Setenv("PHAROS_COOKIE", b.Cookie)
			const n = 300_000
			source := "exit-" + reason
			args := ackedSendArgs(b, "--spill-dir", t.TempDir(), "--count", strconv.Itoa(n), "--source", source,
				"--timeout", "120s", "-v")
			type result struct {
				code           int
				stdout, stderr string
			}
			done := make(chan result, 1)
			go func() {
				var stdout, stderr bytes.Buffer
				code := runSend(context.Background(), args, &stdout, &stderr)
				done <- result{code, stdout.String(), stderr.String()}
			}()
			if _, ok := b.WaitStats(60*time.Second, func(s erltest.Stats) bool { return s.Sources[source].Received >= n/10 }); !ok {
				select {
				case r := <-done:
					t.Fatalf("send ended before the signal: exit %d: %s\n%s", r.code, r.stdout, r.stderr)
				default:
					t.Fatal("the stream did not start")
				}
			}
			b.ExitReplyTo(reason)
			var r result
			select {
			case r = <-done:
			case <-time.After(150 * time.Second):
				t.Fatal("send did not end")
			}
			var sum ackedSendSummary
			if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || r.code != 0 || !sum.Complete || sum.Acknowledged != n {
				t.Fatalf("send exited %d: %s (%v)\n%s", r.code, r.stdout, err, r.stderr)
			}
			st, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources[source].Received >= n })
			if !ok || !st.Sources[source].Exactly(n) {
				t.Fatalf("the Brain has %+v, want 0..%d exactly once, in order", st.Sources[source], n-1)
			}
			restarted := strings.Contains(r.stderr, "restarted by its supervisor")
			if restarted != (reason == "kill") {
				t.Errorf("exit(ReplyTo, %s): manager restarted %v\n%s", reason, restarted, r.stderr)
			}
			t.Logf("exit(ReplyTo, %s) mid-stream: %d records exactly once; restarted %v", reason, n, restarted)
		})
	}
}

// TestRunReadyShowsRestart: the daemon's connection manager killed by the Brain (exit(ReplyTo,
// kill)) is restarted by its supervisor; /readyz and pharos_fsm_restarts_total say so, and every
// record accepted over HTTP reaches the Brain once.
func TestRunReadyShowsRestart(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	httpAddr := freeTCP(t)
	cfg := runConfig(t, b, httpAddr, t.TempDir(), "")
	t.Setenv("PHAROS_BRAIN_MODE", "acked")
	d := startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	const src = "ready-restart"
	post := func(from, to int) {
		t.Helper()
		if status, resp := d.post("/v1/metrics", metricsJSON(src, from, to)); status != http.StatusOK || resp.Accepted != to-from {
			t.Fatalf("%d %+v", status, resp)
		}
	}
	post(0, 500)
	if _, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= 500 }); !ok {
		t.Fatal("the first records did not arrive")
	}
	b.ExitReplyTo("kill")
	post(500, 1_000) // acknowledged: the exit follows this batch's acknowledgement
	deadline := time.Now().Add(15 * time.Second)
	var body string
	for {
		code, b := d.get("/readyz")
		body = b
		if code == http.StatusOK && strings.Contains(body, "restarts 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	post(1_000, 1_500)
	st, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= 1_500 })
	if !ok || !st.Sources[src].Exactly(1_500) {
		t.Fatalf("the Brain has %+v", st.Sources[src])
	}
	if _, metrics := d.get("/metrics"); !strings.Contains(metrics, "pharos_fsm_restarts_total 1\n") {
		t.Errorf("pharos_fsm_restarts_total: %s", grepLines(metrics, "pharos_fsm_restarts_total"))
	}
	t.Logf("/readyz after the kill: %q", body)
}

// TestRunExitsWhenTheManagerCannotBeRestarted: killed more often than delivery.restart_intensity
// allows, the connection manager's supervisor gives up; the daemon hands its tiers back (what it
// holds goes to the spill directory), says why, and exits 1, so that systemd restarts it; a new
// daemon on the directory delivers what the first accepted, once.
func TestRunExitsWhenTheManagerCannotBeRestarted(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	httpAddr := freeTCP(t)
	spillDir := t.TempDir()
	cfg := runConfig(t, b, httpAddr, spillDir, "")
	t.Setenv("PHAROS_BRAIN_MODE", "acked")
	t.Setenv("PHAROS_DELIVERY_RESTART_INTENSITY", "1")
	d := startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	const src = "given-up"
	sent := 0
	post := func() int {
		code, resp := d.post("/v1/metrics", metricsJSON(src, sent, sent+100))
		sent += resp.Accepted
		return code
	}
	for kills := 0; kills < 2; kills++ {
		b.ExitReplyTo("kill")
		post()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if code, body := d.get("/readyz"); (kills == 0 && code == http.StatusOK && strings.Contains(body, "restarts 1")) || kills == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no restart", kills+1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var code int
	select {
	case code = <-d.done:
		d.done <- code // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not exit once its manager could not be restarted")
	}
	if code != exitRuntime || !strings.Contains(d.log.String(), "the connection manager is down for good") {
		t.Fatalf("exit %d\n%s", code, d.log.String())
	}
	// A new daemon on the same spill directory (as systemd would start it) delivers the rest.
	t.Setenv("PHAROS_DELIVERY_RESTART_INTENSITY", "10")
	startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= int64(sent) })
	if !ok || !st.Sources[src].Exactly(int64(sent)) {
		t.Fatalf("the Brain has %+v, want 0..%d once each", st.Sources[src], sent-1)
	}
	t.Logf("daemon exited %d after its manager was killed twice (intensity 1); %d records delivered once, across the restart", code, sent)
}
