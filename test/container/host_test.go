package container

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// hostRecords is how many records the host's pharos-node sends in each test.
const hostRecords = 20_000

// hostSendSummary is the part of `pharos-node send`'s summary line the tests read.
type hostSendSummary struct {
	Sent   int    `json:"sent"`
	Mode   string `json:"mode"`
	Source string `json:"source"`
}

// hostNode runs the static pharos-node binary of the image on the host with the Brain's cookie
// in PHAROS_COOKIE, and returns its standard output; a non-zero exit fails the test.
func hostNode(t *testing.T, b *brain, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBinary(), args...)
	cmd.Env = append(os.Environ(), "PHAROS_COOKIE="+b.Cookie)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pharos-node %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// hostSend sends hostRecords records with `pharos-node send` from the host and checks that the
// Brain got each once, in order.
func hostSend(t *testing.T, l *lan, b *brain, source string, target ...string) {
	t.Helper()
	args := append([]string{"send", "--brain-node", b.Node, "--brain-name", brainName,
		"--name", "pharos_host@" + l.HostIP, "--count", strconv.Itoa(hostRecords), "--source", source}, target...)
	var sum hostSendSummary
	out := hostNode(t, b, args...)
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Sent != hostRecords {
		t.Fatalf("send: %q (%v)", out, err)
	}
	s, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[source].Received >= hostRecords })
	if src := s.Sources[source]; !ok || !src.Exactly(hostRecords) || s.Invalid != 0 {
		t.Fatalf("Brain: %+v, invalid %d; want %d records once each, in order", src, s.Invalid, hostRecords)
	}
	t.Logf("%d records from the host, each once, in order: %s", hostRecords, strings.TrimSpace(out))
}

// pharos-node on the host finds the Brain in its container through the container's epmd (port
// 4369 on the Brain's address) and delivers to it; the Brain's cookie comes from a mounted file
// and its HEALTHCHECK passes.
func TestHostNodeToBrainContainerThroughEpmd(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel string) {
		l := newLAN(t)
		b := startBrain(t, l, brainOptions{Release: rel, CookieFile: true})
		if !b.Healthy() {
			t.Fatal("the Brain's HEALTHCHECK fails")
		}
		out := hostNode(t, b, "ping", "--brain-node", b.Node, "--brain-name", brainName,
			"--name", "pharos_ping@"+l.HostIP, "--epmd-port", "4369")
		if !strings.Contains(out, "pong from "+brainName) {
			t.Fatalf("ping: %q", out)
		}
		hostSend(t, l, b, "host-epmd", "--epmd-port", "4369")
	})
}

// With the Brain's container running no epmd (BRAIN_EPMD=false), pharos-node on the host
// reaches it at its static distribution port (--brain-addr, brain.addr in the daemon).
func TestHostNodeToBrainContainerThroughStaticPort(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel string) {
		l := newLAN(t)
		b := startBrain(t, l, brainOptions{Release: rel, NoEpmd: true})
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(b.Net.IP, "4369"), 2*time.Second); err == nil {
			c.Close()
			t.Fatal("something listens on the Brain's epmd port, which should be closed")
		}
		hostSend(t, l, b, "host-static", "--brain-addr", b.Addr)
	})
}
