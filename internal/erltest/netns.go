package erltest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Netns is a network namespace a Brain and its epmd run in; *netfault.Namespace is one.
type Netns interface {
	// Command is argv run inside the namespace, as the same process (ip netns exec execs it).
	Command(argv ...string) []string
	// DialContext connects from inside the namespace (127.0.0.1 is its loopback).
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// NetnsEpmdPort is the port of an epmd inside a namespace: the namespace is the test's own, so
// the standard port is free there.
const NetnsEpmdPort = 4369

// StartEpmdIn starts an epmd inside the namespace ns, where peers reach it at host (the
// namespace's address), and stops it in t.Cleanup. One epmd per namespace.
func StartEpmdIn(t testing.TB, rel Release, ns Netns, host string) *Epmd {
	t.Helper()
	if n := ReapOrphans(); n > 0 {
		t.Logf("erltest: killed %d process(es) left by an earlier test binary that did not clean up", n)
	}
	argv := ns.Command(rel.Epmd, "-port", strconv.Itoa(NetnsEpmdPort))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = rel.Environ([]string{ownerEnv + "=" + owner()})
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("erltest: start epmd in a namespace: %v", err)
	}
	e := &Epmd{Port: NetnsEpmdPort, Host: host, ns: ns, cmd: cmd}
	t.Cleanup(e.stop)
	if err := waitListening(ns, NetnsEpmdPort, 10*time.Second); err != nil {
		t.Fatalf("erltest: epmd in a namespace, port %d: %v (%s)", NetnsEpmdPort, err, out.String())
	}
	return e
}

// placement checks and completes where the Brain runs: Host, the namespace and its epmd, the
// tick time.
func (o *BrainOptions) placement() error {
	if o.TickTime < 0 || o.TickTime%time.Second != 0 || (o.TickTime > 0 && o.TickTime < time.Second) {
		return fmt.Errorf("TickTime %v: net_ticktime takes whole seconds, at least 1 s", o.TickTime)
	}
	if o.Netns == nil {
		if o.Host == "" {
			o.Host = "127.0.0.1"
		}
		if o.Epmd != nil && o.Epmd.ns != nil {
			return errors.New("the epmd runs in a network namespace and the Brain would not: set Netns")
		}
		return nil
	}
	if _, err := netip.ParseAddr(o.Host); err != nil {
		return fmt.Errorf("a Brain in a network namespace needs Host, the namespace's address: %w", err)
	}
	if o.Epmd != nil && o.Epmd.ns != o.Netns {
		return errors.New("the Brain's epmd must run in the Brain's network namespace")
	}
	return nil
}

// command is an exec.Cmd of name and args, inside the Brain's namespace if it has one.
func (b *Brain) command(name string, args ...string) *exec.Cmd {
	argv := append([]string{name}, args...)
	if b.opts.Netns != nil {
		argv = b.opts.Netns.Command(argv...)
	}
	return exec.Command(argv[0], argv[1:]...)
}

// commandContext is command under ctx.
func (b *Brain) commandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{name}, args...)
	if b.opts.Netns != nil {
		argv = b.opts.Netns.Command(argv...)
	}
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// dialer dials from inside ns, or from the host when ns is nil.
func dialer(ns Netns) func(ctx context.Context, network, address string) (net.Conn, error) {
	if ns != nil {
		return ns.DialContext
	}
	var d net.Dialer
	return d.DialContext
}
