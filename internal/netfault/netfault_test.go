package netfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAvailableSaysWhatIsMissing(t *testing.T) {
	found := func(string) (string, error) { return "/usr/sbin/x", nil }
	noNft := func(cmd string) (string, error) {
		if cmd == "nft" {
			return "", exec.ErrNotFound
		}
		return "/usr/sbin/" + cmd, nil
	}
	require.NoError(t, Available(0, found))

	err := Available(1000, found)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "not root (euid 1000)")

	err = Available(0, noNft)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "nft not found (Debian package nftables")
	assert.NotContains(t, err.Error(), "ip not found")
}

// echo serves l: every connection gets back what it sends; the test's end closes them all.
func echo(t *testing.T, l net.Listener) {
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// roundTrip writes a line on c and reads it back within timeout.
func roundTrip(c net.Conn, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	buf := make([]byte, 5)
	_, err := io.ReadFull(c, buf)
	return err
}

func TestBlackholeDropsTheLinkOnlyAndHeals(t *testing.T) {
	ns := New(t)
	l, err := ns.Listen("tcp", net.JoinHostPort(ns.Addr.String(), "0"))
	require.NoError(t, err)
	echo(t, l)
	local, err := ns.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	echo(t, local)
	addr := l.Addr().String()

	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, roundTrip(c, 2*time.Second))

	require.NoError(t, ns.Blackhole())
	err = roundTrip(c, 500*time.Millisecond)
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrDeadlineExceeded), "an open connection goes silent: %v", err)
	_, err = net.DialTimeout("tcp", addr, 500*time.Millisecond)
	require.Error(t, err)
	assert.False(t, errors.Is(err, syscall.ECONNREFUSED), "no RST: %v", err)

	// The namespace's loopback is not the link.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	lc, err := ns.DialContext(ctx, "tcp", local.Addr().String())
	require.NoError(t, err)
	defer lc.Close()
	require.NoError(t, roundTrip(lc, 2*time.Second))

	require.NoError(t, ns.Heal())
	c2, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, roundTrip(c2, 2*time.Second))
}

// lossRate sends n datagrams from `from` to `to` and returns the fraction that did not arrive.
func lossRate(t *testing.T, from, to net.PacketConn, n int) float64 {
	t.Helper()
	got := make(chan int, 1)
	go func() { // reads while the datagrams come, so the socket buffer never overflows
		count := 0
		buf := make([]byte, 64)
		for {
			_ = to.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, _, err := to.ReadFrom(buf); err != nil {
				got <- count
				return
			}
			count++
		}
	}()
	for i := 0; i < n; i++ {
		_, err := from.WriteTo([]byte(strconv.Itoa(i)), to.LocalAddr())
		require.NoError(t, err)
		if i%20 == 19 {
			time.Sleep(time.Millisecond)
		}
	}
	return 1 - float64(<-got)/float64(n)
}

func TestLossDropsItsShareEachWay(t *testing.T) {
	ns := New(t)
	inside, err := ns.ListenPacket("udp", net.JoinHostPort(ns.Addr.String(), "0"))
	require.NoError(t, err)
	defer inside.Close()
	host, err := net.ListenPacket("udp", net.JoinHostPort(ns.HostAddr.String(), "0"))
	require.NoError(t, err)
	defer host.Close()

	const n = 2000
	assert.Zero(t, lossRate(t, host, inside, 200), "a clean link loses nothing")
	require.NoError(t, ns.Loss(30))
	toNs, toHost := lossRate(t, host, inside, n), lossRate(t, inside, host, n)
	t.Logf("30%% loss: %.1f%% lost host->namespace, %.1f%% namespace->host", 100*toNs, 100*toHost)
	// 2,000 draws: the standard deviation is about 1%.
	assert.InDelta(t, 0.30, toNs, 0.06)
	assert.InDelta(t, 0.30, toHost, 0.06)
	require.NoError(t, ns.Heal())
	assert.Zero(t, lossRate(t, host, inside, 200))

	require.ErrorContains(t, ns.Loss(0), "want 1..100")
	require.ErrorContains(t, ns.Loss(101), "want 1..100")
}

func TestFlapTakesTheLinkDownAndUp(t *testing.T) {
	ns := New(t)
	l, err := ns.Listen("tcp", net.JoinHostPort(ns.Addr.String(), "0"))
	require.NoError(t, err)
	echo(t, l)

	require.NoError(t, ns.LinkDown())
	start := time.Now()
	_, err = net.DialTimeout("tcp", l.Addr().String(), 2*time.Second)
	require.ErrorIs(t, err, syscall.EHOSTUNREACH, "no route while the link is down, not the default route")
	assert.Less(t, time.Since(start), time.Second, "at once")
	require.NoError(t, ns.LinkUp())
	c, err := net.DialTimeout("tcp", l.Addr().String(), 2*time.Second)
	require.NoError(t, err)
	c.Close()

	windows, err := ns.Flap(context.Background(), 100*time.Millisecond, 50*time.Millisecond, 3)
	require.NoError(t, err)
	require.Len(t, windows, 3)
	for i, w := range windows {
		assert.GreaterOrEqual(t, w.End.Sub(w.Start), 100*time.Millisecond, "window %d", i)
		if i > 0 {
			assert.GreaterOrEqual(t, w.Start.Sub(windows[i-1].End), 50*time.Millisecond, "window %d", i)
		}
	}
	c, err = net.DialTimeout("tcp", l.Addr().String(), 2*time.Second)
	require.NoError(t, err, "Flap leaves the link up")
	c.Close()
}

// TestCleanupRemovesEverything: what a test made (a process inside included) is gone once it
// ends, failed or not.
func TestCleanupRemovesEverything(t *testing.T) {
	var ns *Namespace
	var sleeper *exec.Cmd
	t.Run("inner", func(t *testing.T) {
		ns = New(t)
		argv := ns.Command("sleep", "600")
		sleeper = exec.Command(argv[0], argv[1:]...)
		require.NoError(t, sleeper.Start())
	})
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the process inside the namespace still runs")
	}
	assert.NoFileExists(t, "/run/netns/"+ns.Name)
	assert.False(t, exists("/sys/class/net/"+ns.HostLink), "link %s left on the host", ns.HostLink)
	assert.False(t, hostTableExists(ns.table), "table %s left on the host", ns.table)
	routes, err := hostRoutes()
	require.NoError(t, err)
	assert.NotContains(t, routes, ns.subnet, "route left on the host")
}

// deadPid is the pid of a process that has ended.
func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return cmd.Process.Pid
}

// TestSweepRemovesWhatADeadRunLeft: objects named for a test binary that no longer runs (one
// killed with -9 runs no cleanup) are removed; those of a running one are not.
func TestSweepRemovesWhatADeadRunLeft(t *testing.T) {
	live := New(t)
	pid := strconv.Itoa(deadPid(t))
	id := randomHex(3)
	nsName, hostLink, table := nsPrefix+pid+"-"+id, linkPrefix+id+"h", tablePrefix+pid+"_"+id
	t.Cleanup(func() { _ = removeObjects(nsName, hostLink, table) })
	require.NoError(t, run(nil, "ip", "netns", "add", nsName))
	argv := append([]string{"ip", "netns", "exec", nsName}, "sleep", "600")
	sleeper := exec.Command(argv[0], argv[1:]...)
	require.NoError(t, sleeper.Start())
	// A pair left on the host (a run killed between creating the pair and moving its end).
	require.NoError(t, run(nil, "ip", "link", "add", hostLink, "type", "veth", "peer", "name", linkPrefix+id+"n"))
	require.NoError(t, run(nil, "ip", "link", "set", "dev", hostLink, "alias", aliasPrefix+pid+" ns="+nsName))
	require.NoError(t, run([]byte(fmt.Sprintf("table netdev %s {\n}\n", table)), "nft", "-f", "-"))
	// An unreachable route whose link is gone.
	stale := netip.MustParsePrefix("10.231.255.252/30")
	t.Cleanup(func() { _ = removeRoute(stale) })
	require.NoError(t, run(nil, "ip", "route", "add", "unreachable", stale.String(), "metric", routeMetric, "proto", routeProto))

	n, err := Sweep()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 3)
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the process in the stale namespace still runs")
	}
	assert.NoFileExists(t, "/run/netns/"+nsName)
	assert.False(t, exists("/sys/class/net/"+hostLink), "link %s left on the host", hostLink)
	assert.False(t, hostTableExists(table))
	routes, err := hostRoutes()
	require.NoError(t, err)
	assert.NotContains(t, routes, stale)
	assert.Contains(t, routes, live.subnet, "a running test's route stays")

	assert.FileExists(t, "/run/netns/"+live.Name, "a running test's namespace stays")
	assert.True(t, exists("/sys/class/net/"+live.HostLink))
	assert.True(t, hostTableExists(live.table))
}
