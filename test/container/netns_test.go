package container

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// lan is a network of the test's own: a bridge in a network namespace, the host on it through
// a veth (Prefix+"1"), and members in namespaces of their own (Prefix+"2", ...), each with a
// veth to the bridge, for podman to join with --network ns:PATH.
type lan struct {
	t      testing.TB
	Prefix string // "10.A.B.", "172.A.B." or "192.168.B."
	HostIP string
	bridge string // the bridge's namespace
	host   string // the host end of the host's veth
	next   int    // the next member's address
}

// member is a network namespace on a lan.
type member struct {
	NS   string // its name in /run/netns
	IP   string
	Path string // /run/netns/NS, for --network ns:PATH and setns
}

// ip runs `ip ARGS`.
func ip(args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// freeSubnet picks a /24 of the private ranges (10.100-249.x, 172.16-31.x, 192.168.x) that no
// route of the host's covers but the default one, and returns its first three octets and a dot.
func freeSubnet() (string, error) {
	pick := func(n int64) int64 {
		v, _ := rand.Int(rand.Reader, big.NewInt(n))
		return v.Int64()
	}
	for range 30 {
		var prefix string
		switch pick(3) {
		case 0:
			prefix = fmt.Sprintf("10.%d.%d.", 100+pick(150), pick(256))
		case 1:
			prefix = fmt.Sprintf("172.%d.%d.", 16+pick(16), pick(256))
		default:
			prefix = fmt.Sprintf("192.168.%d.", pick(256))
		}
		out, err := exec.Command("ip", "-4", "route", "show", "match", prefix+"0/24").Output()
		if err != nil {
			return "", fmt.Errorf("ip route: %w", err)
		}
		taken := false
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !strings.HasPrefix(line, "default") {
				taken = true
			}
		}
		if !taken {
			return prefix, nil
		}
	}
	return "", errors.New("no private /24 free of the host's routes among 30 tries")
}

// newLAN makes the bridge and the host's veth; t.Cleanup removes every namespace of the lan,
// which takes the veths with them.
func newLAN(t testing.TB) *lan {
	t.Helper()
	prefix, err := freeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	tag := randomHex(3)
	l := &lan{t: t, Prefix: prefix, HostIP: prefix + "1", bridge: ownedName(tag, "lan"), host: "pct" + tag, next: 2}
	t.Cleanup(func() {
		// Deleting the host's end deletes the pair at once; a namespace's veths go
		// asynchronously when it is deleted.
		if _, err := net.InterfaceByName(l.host); err == nil {
			if err := ip("link", "delete", l.host); err != nil {
				t.Errorf("lan: %v", err)
			}
		}
		if err := ip("netns", "delete", l.bridge); err != nil {
			t.Errorf("lan: %v", err)
		}
	})
	steps := [][]string{
		{"netns", "add", l.bridge},
		{"-n", l.bridge, "link", "add", "br0", "type", "bridge"},
		{"-n", l.bridge, "link", "set", "br0", "up"},
		{"link", "add", l.host, "type", "veth", "peer", "name", "port1", "netns", l.bridge},
		{"-n", l.bridge, "link", "set", "port1", "master", "br0", "up"},
		{"addr", "add", l.HostIP + "/24", "dev", l.host},
		{"link", "set", l.host, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			t.Fatalf("lan: %v", err)
		}
	}
	return l
}

// join makes a network namespace with an address on the lan (and loopback up); t.Cleanup
// removes it (after the containers in it, which are started later).
func (l *lan) join(name string) member {
	l.t.Helper()
	n := l.next
	l.next++
	m := member{NS: strings.TrimSuffix(l.bridge, "lan") + name, IP: l.Prefix + fmt.Sprint(n)}
	m.Path = "/run/netns/" + m.NS
	if err := ip("netns", "add", m.NS); err != nil {
		l.t.Fatalf("lan: %v", err)
	}
	l.t.Cleanup(func() {
		if err := ip("netns", "delete", m.NS); err != nil {
			l.t.Errorf("lan: %v", err)
		}
	})
	port := fmt.Sprintf("port%d", n)
	steps := [][]string{
		{"-n", m.NS, "link", "set", "lo", "up"},
		{"-n", m.NS, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", l.bridge},
		{"-n", l.bridge, "link", "set", port, "master", "br0", "up"},
		{"-n", m.NS, "addr", "add", m.IP + "/24", "dev", "eth0"},
		{"-n", m.NS, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			l.t.Fatalf("lan: %v", err)
		}
	}
	return m
}

// ownedNetns lists the network namespaces of test binary pid, or of those no longer alive when
// pid is "".
func ownedNetns(pid string) ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], namePrefix) {
			continue
		}
		p, _, _ := strings.Cut(strings.TrimPrefix(f[0], namePrefix), "-")
		_, statErr := os.Stat("/proc/" + p)
		if (pid != "" && p == pid) || (pid == "" && statErr != nil) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

func reapNetns(pid string) error {
	names, err := ownedNetns(pid)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, ip("netns", "delete", n))
	}
	return errors.Join(errs...)
}

// requestIn sends one line to 127.0.0.1:port inside the network namespace ns and returns the
// line it answers: `ip netns exec` runs bash there, whose /dev/tcp does the connecting.
func requestIn(ctx context.Context, ns string, port int, request string) (string, error) {
	const talk = `exec 3<>"/dev/tcp/127.0.0.1/$1" && printf '%s\n' "$2" >&3 && head -n 1 <&3`
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "bash", "-c", talk, "request", fmt.Sprint(port), request)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%q to port %d in %s: %w: %s", request, port, ns, err, strings.TrimSpace(stderr.String()))
	}
	line, ok := strings.CutSuffix(stdout.String(), "\n")
	if !ok {
		return "", fmt.Errorf("%q to port %d in %s: no answer", request, port, ns)
	}
	return line, nil
}
