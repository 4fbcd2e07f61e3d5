package container

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// Ports of the Brain's image (containers/brain/pharos-brain).
const (
	brainDistPort    = 9100
	brainControlPort = 9101
	brainName        = "pharos_brain"
)

// brainStartTimeout bounds a start of the Brain's container until its control port answers.
const brainStartTimeout = 60 * time.Second

// brainOptions configure a Brain container.
type brainOptions struct {
	Release    string            // OTP release of the image: 25, 27 or 29
	Host       string            // the host part of its node name (default: its address); peers resolve it
	NoEpmd     bool              // BRAIN_EPMD=false: no epmd, the node listens on brainDistPort only
	State      bool              // the acked mode's state in a named volume of the test's
	CookieFile bool              // the cookie from a mounted file (BRAIN_COOKIE_FILE), not PHAROS_COOKIE
	DelayMs    int               // every message costs this long
	Cookie     string            // default: a fresh random cookie
	Env        map[string]string // more environment, over the test's
	Args       []string          // more options of podman run
}

// brain is the reference Brain in a container, in a network namespace of its own on a lan.
type brain struct {
	*container
	t      testing.TB
	Net    member
	Node   string // brain@P.2 (P the lan's /24), or brain@brainOptions.Host
	Cookie string
	Addr   string // its distribution port, host:port
}

// startBrain starts the Brain's container and waits until its Brain process answers.
func startBrain(t testing.TB, l *lan, opts brainOptions) *brain {
	t.Helper()
	m := l.join("brain")
	host := opts.Host
	if host == "" {
		host = m.IP
	}
	if opts.Cookie == "" {
		opts.Cookie = "c" + randomHex(12)
	}
	b := &brain{t: t, Net: m, Node: "brain@" + host, Cookie: opts.Cookie,
		Addr: net.JoinHostPort(m.IP, strconv.Itoa(brainDistPort))}
	env := map[string]string{"BRAIN_NODE": b.Node, "BRAIN_NAME": brainName, "BRAIN_REPORT_MS": "0",
		"BRAIN_DELAY_MS": strconv.Itoa(opts.DelayMs)}
	args := []string{"--network", "ns:" + m.Path, "--hostname", "brain",
		"--health-interval", "disable"} // podman's timers need systemd; the tests run the check
	if opts.NoEpmd {
		env["BRAIN_EPMD"] = "false"
	}
	if opts.State { // else the image's anonymous volume, removed with the container
		args = append(args, "--volume", volume(t, "brain-state")+":/var/lib/pharos-brain")
	}
	if opts.CookieFile {
		env["BRAIN_COOKIE_FILE"] = "/run/secrets/erlang-cookie"
		args = append(args, "--volume", cookieFile(t, b.Cookie, 10001)+":/run/secrets/erlang-cookie:ro")
	} else {
		env["PHAROS_COOKIE"] = b.Cookie
	}
	maps.Copy(env, opts.Env)
	args = append(append(append(args, opts.Args...), envArgs(env)...), brainImage(opts.Release))
	b.container = runContainer(t, "brain", args...)
	b.waitReady()
	if got := b.Eval("erlang:system_info(otp_release)"); got != strconv.Quote(opts.Release) {
		t.Fatalf("the Brain's container runs OTP %s, want %s", got, opts.Release)
	}
	t.Logf("Brain %s (OTP %s) in container %s", b.Node, opts.Release, b.Name)
	return b
}

// envArgs are podman's --env options for env, in a stable order.
func envArgs(env map[string]string) []string {
	var args []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		args = append(args, "--env", k+"="+env[k])
	}
	return args
}

// cookieFile writes the cookie to a file of mode 0400 owned by uid, for a container to mount.
func cookieFile(t testing.TB, cookie string, uid int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "erlang-cookie")
	if err := os.WriteFile(path, []byte(cookie+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	return path
}

// control sends one request line to the Brain's control port, which listens on the
// container's loopback, from inside its network namespace, and returns the answer line.
func (b *brain) control(ctx context.Context, request string) (string, error) {
	out, err := requestIn(ctx, b.Net.NS, brainControlPort, request)
	if err != nil {
		return "", fmt.Errorf("Brain control port: %w", err)
	}
	return out, nil
}

func (b *brain) mustControl(request string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := b.control(ctx, request)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// waitReady waits until the control port answers, which it does once the Brain process is
// registered (the supervisor starts it first).
func (b *brain) waitReady() {
	b.t.Helper()
	deadline := time.Now().Add(brainStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		out, err := b.control(ctx, "ping")
		cancel()
		if err == nil && out == "pong" {
			return
		}
		if running := b.Inspect("{{.State.Running}}"); running != "true" {
			b.t.Fatalf("the Brain's container stopped during its start (running: %s):\n%s", running, b.Logs())
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the Brain's container did not answer within %s: %v %q", brainStartTimeout, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Eval evaluates Erlang expressions on the Brain node and returns the value printed with ~0p.
func (b *brain) Eval(exprs string) string {
	b.t.Helper()
	out := b.mustControl("eval " + strings.TrimSuffix(strings.TrimSpace(exprs), ".") + ".")
	v, ok := strings.CutPrefix(out, "ok ")
	if !ok {
		b.t.Fatalf("eval %q on the Brain: %s", exprs, out)
	}
	return v
}

// Stats reads the Brain's statistics.
func (b *brain) Stats() erltest.Stats {
	b.t.Helper()
	var s erltest.Stats
	if err := json.Unmarshal([]byte(b.mustControl("stats")), &s); err != nil {
		b.t.Fatalf("Brain stats: %v", err)
	}
	return s
}

// WaitStats polls the statistics until cond holds or timeout passes, and returns the last ones.
func (b *brain) WaitStats(timeout time.Duration, cond func(erltest.Stats) bool) (erltest.Stats, bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := b.Stats()
		if cond(s) {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Healthy runs the image's HEALTHCHECK (`pharos-brain ctl ping`) and reports whether it passed.
func (c *container) Healthy() bool {
	c.t.Helper()
	code, out := podmanExitCode("healthcheck", "run", c.Name)
	if code != 0 && code != 1 {
		c.t.Fatalf("podman healthcheck run %s: exit %d: %s", c.Name, code, out)
	}
	return code == 0
}

// Restart stops the Brain's container (SIGTERM: the node stops cleanly) and starts it again.
func (b *brain) Restart() {
	b.t.Helper()
	mustPodman(b.t, "stop", "--time", "10", b.Name)
	b.start()
}

// start starts the stopped container again and waits until the Brain answers.
func (b *brain) start() {
	b.t.Helper()
	mustPodman(b.t, "start", b.Name)
	b.waitReady()
}
