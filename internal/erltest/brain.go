package erltest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ownerEnv marks every process the harness starts, so CheckNoLeaks can find stragglers.
const ownerEnv = "PHAROS_ERLTEST_OWNER"

// startTimeout bounds how long a Brain or epmd may take to come up.
const startTimeout = 30 * time.Second

// Epmd is a private epmd on a free loopback port, or inside a network namespace (StartEpmdIn).
type Epmd struct {
	Port int
	Host string // where peers reach it: 127.0.0.1, or the namespace's address
	ns   Netns  // nil on the host
	cmd  *exec.Cmd
}

// StartEpmd starts an epmd for this test on a free port and stops it in t.Cleanup.
func StartEpmd(t testing.TB, rel Release) *Epmd {
	t.Helper()
	if n := ReapOrphans(); n > 0 {
		t.Logf("erltest: killed %d process(es) left by an earlier test binary that did not clean up", n)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("erltest: %v", err)
		}
		cmd := exec.Command(rel.Epmd, "-port", strconv.Itoa(port))
		cmd.Env = rel.Environ([]string{ownerEnv + "=" + owner()})
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("erltest: start epmd: %v", err)
		}
		e := &Epmd{Port: port, Host: "127.0.0.1", cmd: cmd}
		if err := waitListening(nil, port, 5*time.Second); err != nil {
			e.stop()
			lastErr = fmt.Errorf("epmd on port %d: %w (%s)", port, err, out.String())
			continue
		}
		t.Cleanup(e.stop)
		return e
	}
	t.Fatalf("erltest: %v", lastErr)
	return nil
}

func (e *Epmd) stop() {
	if e.cmd.Process != nil {
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		_ = e.cmd.Wait()
	}
}

// BrainOptions configure a reference Brain node.
type BrainOptions struct {
	Name     string   // registered name of the Brain process; default "pharos_brain"
	Cookie   string   // default: a fresh random cookie
	ErlFlags []string // extra flags for erl, e.g. "-kernel", "net_ticktime", "4"
	StateDir string   // where acked-mode state survives restarts; default: none
	DelayMs  int      // per-message delay (a slow Brain)
	Epmd     *Epmd    // default: a private epmd started for this Brain (in Netns if set)
	Env      []string // extra environment, "K=V"
	// Netns runs the Brain inside a network namespace (package netfault makes one), at Host,
	// the namespace's address: its node name is brain_…@Host and peers reach it and its epmd
	// there. The control port stays on the namespace's loopback, reached from inside.
	Netns Netns
	Host  string // with Netns: required; without: 127.0.0.1
	// TickTime is the Brain's net_ticktime (whole seconds, at least 1 s); 0 leaves OTP's 60 s.
	// A peer must use the same (node.Options.TickTime).
	TickTime time.Duration

	// Cluster settings (StartCluster sets them; docs/clusters.md). NodeName is the node's alive
	// part (default brain_<random>); Names are several Brain processes on the node (default
	// [Name]); Store is the acked mode's store, "local" (default) or "mnesia" (needs StateDir);
	// Peers are the Brain nodes it connects to and whose mnesia schema it joins; PG starts the pg
	// scope "pharos" and joins the Brain processes to the group "pharos_brains".
	NodeName string
	Names    []string
	Store    string
	Peers    []string
	PG       bool
}

// Brain is a running reference Brain node (test/erlang) on loopback.
type Brain struct {
	Release  Release
	Node     string // full node name, e.g. brain_1a2b@127.0.0.1
	Host     string // the host part of Node: 127.0.0.1, or the namespace's address
	Name     string // registered name of the Brain process
	Cookie   string
	EpmdPort int
	Home     string // HOME of the Brain: holds .erlang.cookie (mode 0400)

	t       testing.TB
	opts    BrainOptions
	ebin    string
	mu      sync.Mutex
	cmd     *exec.Cmd
	ctlPort int
	output  *lockedBuffer
	exited  chan struct{}
}

// StartBrain builds the reference Brain with the release's own erlc (once per source version),
// starts a private epmd unless one is given, starts the Brain node and waits until its process
// is registered. Everything is stopped in t.Cleanup.
func StartBrain(t testing.TB, opts BrainOptions) *Brain {
	t.Helper()
	rel := FromEnv(t)
	if opts.Name == "" {
		opts.Name = "pharos_brain"
	}
	if opts.Cookie == "" {
		opts.Cookie = "c" + randomHex(12)
	}
	if err := opts.placement(); err != nil {
		t.Fatalf("erltest: %v", err)
	}
	if opts.Epmd == nil && opts.Netns != nil {
		opts.Epmd = StartEpmdIn(t, rel, opts.Netns, opts.Host)
	} else if opts.Epmd == nil {
		opts.Epmd = StartEpmd(t, rel)
	}
	ebin, err := BuildBrain(rel)
	if err != nil {
		t.Fatalf("erltest: %v", err)
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(opts.Cookie), 0o400); err != nil {
		t.Fatalf("erltest: %v", err)
	}
	alive := opts.NodeName
	if alive == "" {
		alive = "brain_" + randomHex(4)
	}
	b := &Brain{
		Release:  rel,
		Node:     alive + "@" + opts.Host,
		Host:     opts.Host,
		Name:     opts.Name,
		Cookie:   opts.Cookie,
		EpmdPort: opts.Epmd.Port,
		Home:     home,
		t:        t,
		opts:     opts,
		ebin:     ebin,
	}
	t.Cleanup(b.kill)
	if err := b.start(); err != nil {
		t.Fatalf("erltest: %v", err)
	}
	where := ""
	if opts.Netns != nil {
		where = " in a network namespace"
	}
	t.Logf("erltest: Brain %s (registered as %s) on OTP %s, epmd port %d%s", b.Node, b.Name, rel.Version, b.EpmdPort, where)
	return b
}

// Environ is the environment an Erlang or Go peer of this Brain needs: its epmd port and HOME (the cookie).
func (b *Brain) Environ() []string {
	return b.Release.Environ([]string{
		"ERL_EPMD_PORT=" + strconv.Itoa(b.EpmdPort),
		"HOME=" + b.Home,
		ownerEnv + "=" + owner(),
	})
}

func (b *Brain) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	args := []string{"-noshell", "-noinput", "-name", b.Node, "-pa", b.ebin,
		"-pharos_brain", "name", b.Name,
		"-pharos_brain", "delay_ms", strconv.Itoa(b.opts.DelayMs)}
	if b.opts.StateDir != "" {
		args = append(args, "-pharos_brain", "state_dir", fmt.Sprintf("%q", b.opts.StateDir))
	}
	args = append(args, b.clusterArgs()...)
	if b.opts.TickTime > 0 {
		args = append(args, "-kernel", "net_ticktime", strconv.Itoa(int(b.opts.TickTime/time.Second)))
	}
	args = append(args, b.opts.ErlFlags...)
	args = append(args, "-eval", "{ok, _} = application:ensure_all_started(pharos_brain)")
	cmd := b.command(b.Release.Erl, args...)
	cmd.Env = append(b.Environ(), b.opts.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start Brain: %w", err)
	}
	exited := make(chan struct{})
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if i := strings.Index(line, "PHAROS_BRAIN_READY control_port="); i >= 0 {
				f := strings.Fields(line[i+len("PHAROS_BRAIN_READY control_port="):])
				if p, err := strconv.Atoi(f[0]); err == nil {
					select {
					case ready <- p:
					default:
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	b.cmd, b.output, b.exited = cmd, out, exited
	select {
	case p := <-ready:
		b.ctlPort = p
		return nil
	case <-exited:
		return fmt.Errorf("Brain node %s exited during start:\n%s", b.Node, out.String())
	case <-time.After(startTimeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return fmt.Errorf("Brain node %s not ready after %s:\n%s", b.Node, startTimeout, out.String())
	}
}

// Output returns what the Brain node printed so far.
func (b *Brain) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.output.String()
}

// Pid returns the OS process id of the Brain's BEAM.
func (b *Brain) Pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd.Process.Pid
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// CPUTime returns the CPU time (user and system, every thread) the Brain's BEAM has used so
// far, read from /proc; its resolution is 10 ms.
func (b *Brain) CPUTime() time.Duration {
	b.t.Helper()
	d, err := processCPUTime(b.Pid())
	if err != nil {
		b.t.Fatalf("erltest: Brain CPU time: %v", err)
	}
	return d
}

func (b *Brain) signal(sig syscall.Signal) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := syscall.Kill(-b.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		b.t.Fatalf("erltest: signal %v to Brain: %v", sig, err)
	}
}

// Kill9 kills the Brain node with SIGKILL and waits until it is gone.
func (b *Brain) Kill9() {
	b.t.Helper()
	b.signal(syscall.SIGKILL)
	b.mu.Lock()
	exited := b.exited
	b.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		b.t.Fatalf("erltest: Brain did not die after SIGKILL")
	}
}

// Stop freezes the Brain node with SIGSTOP and returns once every thread of its process group
// is stopped: kill(2) only queues the signal, and on a busy machine a scheduler thread can
// still answer for a moment after it returns. Cont resumes it.
func (b *Brain) Stop() {
	b.t.Helper()
	b.signal(syscall.SIGSTOP)
	b.mu.Lock()
	pgid := b.cmd.Process.Pid
	b.mu.Unlock()
	var running []string
	stopped := pollUntil(10*time.Second, 5*time.Millisecond, func() bool {
		var err error
		if running, err = runningThreads(pgid); err != nil {
			b.t.Fatalf("erltest: wait for the Brain to stop: %v", err)
		}
		return len(running) == 0
	})
	if !stopped {
		b.t.Fatalf("erltest: Brain threads still running 10 s after SIGSTOP: %v", running)
	}
}

// Cont resumes a Brain frozen with Stop.
func (b *Brain) Cont() { b.t.Helper(); b.signal(syscall.SIGCONT) }

// Restart starts the Brain node again under the same name, cookie, epmd and state directory,
// after Kill9 (or kills it first).
func (b *Brain) Restart() {
	b.t.Helper()
	b.kill()
	// epmd drops the old registration when the dead node's socket closes; a start that races it
	// fails with "name in use", so retry briefly.
	var err error
	if !pollUntil(startTimeout, 200*time.Millisecond, func() bool { err = b.start(); return err == nil }) {
		b.t.Fatalf("erltest: restart: %v", err)
	}
}

func (b *Brain) kill() {
	b.mu.Lock()
	cmd, exited := b.cmd, b.exited
	b.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
}

// control sends one request line to the control port and returns the answer line.
func (b *Brain) control(ctx context.Context, request string) (string, error) {
	b.mu.Lock()
	port := b.ctlPort
	b.mu.Unlock()
	conn, err := dialer(b.opts.Netns)(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return "", fmt.Errorf("Brain control port: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, request+"\n"); err != nil {
		return "", fmt.Errorf("Brain control port: %w", err)
	}
	line, err := bufio.NewReaderSize(conn, 1<<20).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("Brain control port: %q: %w", request, err)
	}
	return strings.TrimRight(line, "\n"), nil
}

func (b *Brain) mustControl(request string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := b.control(ctx, request)
	if err != nil {
		b.t.Fatalf("erltest: %v", err)
	}
	return out
}

// Eval evaluates Erlang expressions on the Brain node and returns the value printed with ~0p.
// A failing expression fails the test.
func (b *Brain) Eval(exprs string) string {
	b.t.Helper()
	exprs = strings.TrimSpace(exprs)
	if !strings.HasSuffix(exprs, ".") {
		exprs += "."
	}
	out := b.mustControl("eval " + strings.ReplaceAll(exprs, "\n", " "))
	if v, ok := strings.CutPrefix(out, "ok "); ok {
		return v
	}
	b.t.Fatalf("erltest: eval %q on the Brain: %s", exprs, out)
	return ""
}

// WaitMonitored waits until the Brain process is monitored by a process of another node (a
// sender's monitor has reached it) and reports whether that happened within timeout. A test
// that crashes the Brain process to make a sender reconnect waits for this first: a crash sent
// through the control port can overtake a monitor request still on its way, which then lands
// on the restarted process and sees no crash.
func (b *Brain) WaitMonitored(timeout time.Duration) bool {
	b.t.Helper()
	expr := fmt.Sprintf(`case whereis(%s) of
		undefined -> false;
		P -> {monitored_by, L} = process_info(P, monitored_by),
		     lists:any(fun(M) -> is_pid(M) andalso node(M) =/= node() end, L)
	end`, b.Name)
	return pollUntil(timeout, 10*time.Millisecond, func() bool { return b.Eval(expr) == "true" })
}

// Crash kills the Brain process (not the node); its supervisor restarts it.
func (b *Brain) Crash() { b.t.Helper(); b.mustControl("crash") }

// ExitReplyTo makes the Brain send exit(ReplyTo, reason) once, to the ReplyTo of the next
// acknowledged batch, after acknowledging it: normal, shutdown, kill or any other atom.
func (b *Brain) ExitReplyTo(reason string) { b.t.Helper(); b.mustControl("exit_reply_to " + reason) }

// SetDelay makes every message cost ms milliseconds in the Brain.
func (b *Brain) SetDelay(ms int) { b.t.Helper(); b.mustControl("delay " + strconv.Itoa(ms)) }

// Reset clears the Brain's statistics.
func (b *Brain) Reset() { b.t.Helper(); b.mustControl("reset") }

// Stats reads the Brain's statistics.
func (b *Brain) Stats() Stats {
	b.t.Helper()
	var s Stats
	if err := json.Unmarshal([]byte(b.mustControl("stats")), &s); err != nil {
		b.t.Fatalf("erltest: stats: %v", err)
	}
	return s
}

// WaitStats polls the statistics until cond holds or the timeout passes, and returns the last ones.
func (b *Brain) WaitStats(timeout time.Duration, cond func(Stats) bool) (Stats, bool) {
	b.t.Helper()
	var s Stats
	ok := pollUntil(timeout, 50*time.Millisecond, func() bool { s = b.Stats(); return cond(s) })
	return s, ok
}

// Stats are the reference Brain's counters (see test/erlang/src/pharos_brain_store.erl).
type Stats struct {
	Received       int64                  `json:"received"` // valid records
	Metrics        int64                  `json:"metrics"`
	Alerts         int64                  `json:"alerts"`
	Invalid        int64                  `json:"invalid"`
	Modes          map[string]int64       `json:"modes"` // valid records per delivery mode
	InvalidModes   map[string]int64       `json:"invalid_modes"`
	InvalidReasons map[string]int64       `json:"invalid_reasons"`
	Sources        map[string]SourceStats `json:"sources"` // sequence tracking of the `seq` tag, per Source
	NoSeq          map[string]int64       `json:"no_seq"`  // valid records without a `seq` tag, per Source
	Acked          map[string]int64       `json:"acked"`   // acked mode: NextSeq per SourceId
	BrainStarts    int64                  `json:"brain_starts"`
	DelayMs        int64                  `json:"delay_ms"`
}

// SourceStats is the sequence tracking of one source.
type SourceStats struct {
	Received   int64 `json:"received"`
	Unique     int64 `json:"unique"`
	Duplicates int64 `json:"duplicates"`
	Reorders   int64 `json:"reorders"`
	Next       int64 `json:"next"` // 0..Next-1 all seen
	MaxSeq     int64 `json:"max_seq"`
	Missing    int64 `json:"missing"` // numbers in 0..MaxSeq never seen
}

// Exactly reports whether exactly the sequence numbers 0..n-1 arrived, once each, in order.
func (s SourceStats) Exactly(n int64) bool {
	return s.Received == n && s.Unique == n && s.Next == n && s.Duplicates == 0 && s.Reorders == 0 && s.Missing == 0
}

// Client runs Erlang expressions in a fresh client node of the Brain's cluster (same epmd, same
// cookie). The variable Brain is bound to {Name, Node}. It returns what the expressions printed.
func (b *Brain) Client(exprs string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	prelude := fmt.Sprintf("Brain = {%s, '%s'}, true = net_kernel:connect_node('%s'), ", b.Name, b.Node, b.Node)
	full := fmt.Sprintf(`try begin %s %s end of _ -> erlang:halt(0) catch C:E:S -> io:format(standard_error, "~p:~p~n~p~n", [C, E, S]), erlang:halt(3) end.`, prelude, exprs)
	cmd := b.commandContext(ctx, b.Release.Erl, "-noshell", "-noinput", "-hidden", "-name", "client_"+randomHex(4)+"@"+b.Host, "-eval", full)
	cmd.Env = b.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.t.Fatalf("erltest: client node failed: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until 127.0.0.1:port (the namespace's loopback with ns) accepts.
func waitListening(ns Netns, port int, timeout time.Duration) error {
	dial := dialer(ns)
	var err error
	pollUntil(timeout, 20*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var c net.Conn
		if c, err = dial(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			c.Close()
		}
		return err == nil
	})
	return err
}

// pollUntil calls cond every interval until it holds (true) or timeout has passed (false); cond
// runs at least once.
func pollUntil(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
