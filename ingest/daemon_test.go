package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// daemon is a real `pharos-node run` process, built from this tree, beside a real Brain.
type daemon struct {
	cmd      *exec.Cmd
	httpAddr string
	log      *bytes.Buffer
}

// startDaemon builds cmd/pharos-node (PHAROS_TEST_DAEMON_BIN names another build to measure
// instead) and runs it in payload mode against brain, with HTTP ingest on a free loopback port
// and the extra flags; it is stopped in t.Cleanup.
func startDaemon(t *testing.T, brain *erltest.Brain, flags ...string) *daemon {
	t.Helper()
	bin := os.Getenv("PHAROS_TEST_DAEMON_BIN")
	if bin == "" {
		root, err := erltest.RepoRoot()
		require.NoError(t, err)
		bin = filepath.Join(t.TempDir(), "pharos-node")
		build := exec.Command("go", "build", "-o", bin, "./cmd/pharos-node")
		build.Dir = root
		out, err := build.CombinedOutput()
		require.NoError(t, err, "go build: %s", out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	args := append([]string{"run", "--node.name", fmt.Sprintf("pharos_ingest_%d@127.0.0.1", os.Getpid()),
		"--brain.node", brain.Node, "--brain.name", brain.Name, "--ingest.http.listen", addr,
		"--log.level", "warn", "--log.format", "json"}, flags...)
	d := &daemon{httpAddr: addr, log: &bytes.Buffer{}}
	d.cmd = exec.Command(bin, args...)
	var env []string
	for _, kv := range brain.Environ() {
		if !strings.HasPrefix(kv, "PHAROS_") { // the daemon refuses settings it does not know
			env = append(env, kv)
		}
	}
	d.cmd.Env = append(env, "PHAROS_COOKIE="+brain.Cookie)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	require.NoError(t, d.cmd.Start())
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the daemon did not answer: %s", d.log)
	return d
}

// rssBytes is the resident set of pid (VmRSS).
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// TestDaemonStalledBodiesStayInBudget is issue 18's finding against a real daemon: 150 clients
// each send 4 MiB - 16 bytes of a 4 MiB body (max_body_bytes) and stall. The daemon reads at most
// ingest.http.max_inflight_bytes (the default, 64 MiB) of them, answers the others 429 at once,
// answers the stalled ones 408 at the body deadline, and its RSS stays under the budget plus
// 100 MB throughout (before the budget: from 15 MB to 872 MB).
func TestDaemonStalledBodiesStayInBudget(t *testing.T) {
	const (
		clients  = 150
		bodySize = 4 << 20
		budget   = 64 << 20 // the default of ingest.http.max_inflight_bytes
		slack    = 100_000_000
	)
	brain := erltest.StartBrain(t, erltest.BrainOptions{})
	d := startDaemon(t, brain, "--ingest.http.body_timeout", "8s")
	pid := d.cmd.Process.Pid
	base := rssBytes(t, pid)

	var wg sync.WaitGroup
	var tooMany, timedOut, other atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	part := bytes.Repeat([]byte(" "), bodySize-16)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dialer net.Dialer
			conn, err := dialer.DialContext(ctx, "tcp", d.httpAddr)
			if err != nil {
				other.Add(1)
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(45 * time.Second))
			go func() { // the body, in a goroutine: the answer may come before it is all written
				_, _ = fmt.Fprintf(conn, "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", bodySize)
				_, _ = conn.Write(part) // fails once a refused request's connection is closed
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				other.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				tooMany.Add(1)
			case http.StatusRequestTimeout:
				timedOut.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	var peak int64
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	for watching := true; watching; {
		select {
		case <-finished:
			watching = false
		case <-time.After(50 * time.Millisecond):
		}
		peak = max(peak, rssBytes(t, pid))
	}
	t.Logf("RSS: %.1f MB before, peak %.1f MB with %d stalled 4 MiB bodies (limit: budget %d MiB + 100 MB = %.1f MB); "+
		"answers: %d 429, %d 408, %d other", float64(base)/1e6, float64(peak)/1e6, clients, budget>>20,
		float64(budget+slack)/1e6, tooMany.Load(), timedOut.Load(), other.Load())
	assert.Less(t, peak, int64(budget+slack), "peak RSS")
	assert.Equal(t, int64(budget/bodySize), timedOut.Load(), "as many bodies read as the budget holds")
	assert.Equal(t, int64(clients-budget/bodySize), tooMany.Load(), "the others refused at once")
	assert.Zero(t, other.Load())

	resp, err := http.Get("http://" + d.httpAddr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	metrics, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(metrics), fmt.Sprintf(`pharos_ingest_requests_refused_total{reason="busy",source="http"} %d`, clients-budget/bodySize))
	assert.Contains(t, string(metrics), fmt.Sprintf(`pharos_ingest_requests_refused_total{reason="timeout",source="http"} %d`, budget/bodySize))
	assert.Contains(t, string(metrics), "pharos_ingest_http_inflight_bytes 0")
}
