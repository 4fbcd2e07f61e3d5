package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestRunReloadSIGHUP: five SIGHUPs while records flow over HTTP, on a live Brain. Each reload
// changes something: a live limit (ingest.http.max_records: a request above the new limit is
// refused), the log level (at warn the reload's own info lines vanish; back at info they
// return), the StatsD and admin listeners (moved), a key that needs a restart (brain.mode:
// logged, the running mode kept), and one bad file (refused naming its key; the running
// configuration kept). In acked mode the Brain then has every accepted record exactly once; in
// payload mode too, and the connection to the Brain was never dropped.
func TestRunReloadSIGHUP(t *testing.T) {
	for _, mode := range []string{"acked", "payload"} {
		t.Run(mode, func(t *testing.T) { testReload(t, mode) })
	}
}

func testReload(t *testing.T, mode string) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	httpAddr := freeTCP(t)
	base := runConfig(t, b, httpAddr, t.TempDir(), "")
	orig, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	// rewrite changes the file: base, then each edit (old text, new text) applied.
	rewrite := func(edits ...string) {
		t.Helper()
		text := strings.Replace(string(orig), "  mode: payload\n", "", 1)
		text = strings.Replace(text, "  name: "+b.Name+"\n", "  name: "+b.Name+"\n  mode: "+mode+"\n", 1)
		for i := 0; i+1 < len(edits); i += 2 {
			if !strings.Contains(text, edits[i]) {
				t.Fatalf("config has no %q", edits[i])
			}
			text = strings.Replace(text, edits[i], edits[i+1], 1)
		}
		if err := os.WriteFile(base, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite()
	notes := listenNotify(t)
	d := startDaemon(t, context.Background(), b.Cookie, base, httpAddr)

	// Records flow all along: batches of 50, numbered.
	const src = "reload"
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 50 {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := http.Post(d.http+"/v1/metrics", "application/json", strings.NewReader(metricsJSON(src, i, i+50)))
			if err != nil {
				t.Errorf("POST at %d: %v", i, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("POST at %d: %d", i, resp.StatusCode)
				return
			}
			sent.Store(int64(i + 50))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	// hup sends SIGHUP and waits for the reload's outcome in the log: the n-th reload line.
	reloads := 0
	hup := func(wantLine string) {
		t.Helper()
		reloads++
		before, logAt := sent.Load(), len(d.log.String())
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(d.log.String()[logAt:], wantLine) {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d: no %q in the log:\n%s", reloads, wantLine, d.log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Records went on flowing across the reload.
		for deadline := time.Now().Add(5 * time.Second); sent.Load() < before+200; {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d: records stopped flowing at %d", reloads, sent.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	post := func(addr string, n int) int {
		t.Helper()
		resp, err := http.Post("http://"+addr+"/v1/metrics", "application/json", strings.NewReader(metricsJSON("limit", 0, n)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(httpAddr, 80); code != http.StatusOK {
		t.Fatalf("80 records before the reload: %d", code)
	}

	// 1. A live limit.
	rewrite("    listen: "+httpAddr+"\n", "    listen: "+httpAddr+"\n    max_records: 60\n")
	hup(`"applied":["ingest.http.max_records"]`)
	if code := post(httpAddr, 80); code != http.StatusRequestEntityTooLarge {
		t.Errorf("80 records with max_records 60: %d, want 413", code)
	}

	// 2. The log level to warn, and StatsD moved: its "listening" line is info, so not logged.
	statsd1, statsd2, admin := freeUDP(t), freeUDP(t), freeTCP(t)
	rewrite("    listen: "+httpAddr+"\n", "    listen: "+httpAddr+"\n    max_records: 60\n  statsd:\n    listen: "+statsd1+"\n",
		"  level: info\n", "  level: warn\n")
	logBefore := len(d.log.String())
	syscallHUPAndWait(t, d, &reloads, func() bool {
		// Nothing but warnings and errors is logged at warn: wait for the move to take effect.
		return udpBound(t, statsd1)
	})
	if after := d.log.String()[logBefore:]; strings.Contains(after, statsd1) || strings.Contains(after, "configuration reloaded") {
		t.Errorf("info lines logged at log.level warn:\n%s", after)
	}

	// 3. Back to info; StatsD moved again and the admin endpoints to a listener of their own;
	// brain.mode changed in the file, which needs a restart.
	other := map[string]string{"acked": "payload", "payload": "acked"}[mode]
	rewrite("    listen: "+httpAddr+"\n", "    listen: "+httpAddr+"\n    max_records: 60\n  statsd:\n    listen: "+statsd2+"\n",
		"  mode: "+mode+"\n", "  mode: "+other+"\n", "log:\n", "admin:\n  listen: "+admin+"\nlog:\n")
	hup(`"key":"ingest.statsd.listen","addr":"` + statsd2 + `"`)
	if !strings.Contains(d.log.String(), `"key":"brain.mode","running":"`+mode+`","file":"`+other+`"`) {
		t.Errorf("the mode change is not reported as needing a restart:\n%s", d.log.String())
	}
	if code, _ := getURL(t, "http://"+admin+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics on the new admin listener: %d", code)
	}
	if code, _ := getURL(t, d.http+"/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics still on the ingest listener: %d", code)
	}
	if udpBound(t, statsd1) {
		t.Errorf("the old StatsD address %s is still bound", statsd1)
	}

	// 4. A bad file: refused, naming the key; the running configuration (max_records 60) kept.
	rewrite("  flush_interval: 20ms\n", "  flush_interval: \"10\"\n")
	hup(`"key":"delivery.flush_interval"`)
	if !strings.Contains(d.log.String(), "reload refused: invalid configuration; the running configuration is kept") {
		t.Errorf("the bad reload is not logged as refused")
	}
	if code := post(httpAddr, 80); code != http.StatusRequestEntityTooLarge {
		t.Errorf("after the bad reload, 80 records: %d, want 413 (max_records 60 kept)", code)
	}

	// 5. The connection manager's tuning changes live (agent.Reconfigure).
	rewrite("  flush_interval: 20ms\n", "  flush_interval: 30ms\n")
	hup("connection manager reconfigured")
	if !strings.Contains(d.log.String(), `"delivery.flush_interval"`) {
		t.Errorf("delivery.flush_interval not reported applied:\n%s", d.log.String())
	}

	// 6. The original file again: every live key back.
	rewrite()
	hup(`"needs_restart":[]`)
	if code := post(httpAddr, 80); code != http.StatusOK {
		t.Errorf("after the last reload, 80 records: %d, want 200", code)
	}
	if reloads != 6 {
		t.Fatalf("%d reloads", reloads)
	}

	close(stop)
	wg.Wait()
	n := sent.Load()
	st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= n })
	if !ok || !st.Sources[src].Exactly(n) {
		t.Fatalf("%s mode: the Brain has %+v, want exactly 0..%d once each, in order", mode, st.Sources[src], n-1)
	}
	_, metrics := getURL(t, d.http+"/metrics") // the admin endpoints are back on the ingest listener
	if !strings.Contains(metrics, `pharos_fsm_connect_attempts_total{result="ok"} 1`+"\n") {
		t.Errorf("the connection to the Brain did not stay up: %s", grepLines(metrics, "pharos_fsm_connect_attempts_total"))
	}
	if mode == "acked" {
		// The Brain's last acknowledgement may still be on its way when its statistics show
		// every record.
		want := fmt.Sprintf("pharos_fsm_acked_records_total %d\n", n+2*80)
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(metrics, want) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			_, metrics = getURL(t, d.http+"/metrics")
		}
		if !strings.Contains(metrics, want) {
			t.Errorf("acked records: %s; want %d", grepLines(metrics, "pharos_fsm_acked_records_total"), n+2*80)
		}
	}
	// systemd heard READY=1 at start, and RELOADING=1 then READY=1 around each reload.
	got := strings.Join(notes.states(), "|")
	if !strings.HasPrefix(got, "READY=1") || strings.Count(got, "RELOADING=1") != 6 || strings.Count(got, "READY=1") != 7 {
		t.Errorf("sd_notify states: %s", got)
	}
	t.Logf("%s mode: %d records through 6 reloads, each once, in order", mode, n)
}

// syscallHUPAndWait sends SIGHUP and waits until done (for a reload whose log lines are below
// the level).
func syscallHUPAndWait(t *testing.T, d *daemon, reloads *int, done func() bool) {
	t.Helper()
	*reloads++
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !done(); {
		if time.Now().After(deadline) {
			t.Fatalf("reload %d did not take effect:\n%s", *reloads, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// udpBound reports whether a socket is bound to the UDP address, from /proc/net/udp (binding
// the address to find out would race the daemon's own bind).
func udpBound(t *testing.T, addr string) bool {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(host).To4()
	p, _ := strconv.Atoi(port)
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], p)
	table, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(table), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == want {
			return true
		}
	}
	return false
}

func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// notifyListener is systemd's end of NOTIFY_SOCKET, for the tests.
type notifyListener struct {
	mu  sync.Mutex
	got []string
}

func (n *notifyListener) states() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got...)
}

// listenNotify binds a unixgram socket, points NOTIFY_SOCKET at it and records each datagram's
// first line.
func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	path := t.TempDir() + "/notify"
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	n := &notifyListener{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			first, _, _ := strings.Cut(string(buf[:k]), "\n")
			n.mu.Lock()
			n.got = append(n.got, first)
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}
