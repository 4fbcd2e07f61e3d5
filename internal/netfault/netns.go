package netfault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Prefixes of everything the package creates (see the package comment).
const (
	nsPrefix    = "pharosnf-"
	linkPrefix  = "pnf"
	tablePrefix = "pharosnf_"
	aliasPrefix = "pharos-netfault owner="
	lockPath    = "/run/lock/pharos-netfault.lock"
	// routeProto marks the host's unreachable route for a link's /30 (see address).
	routeProto  = "231"
	routeMetric = "4242"
)

// cmdTimeout bounds one ip or nft command.
const cmdTimeout = 20 * time.Second

// ErrUnavailable is wrapped by the error New reports when the host cannot make namespaces:
// not root, or ip or nft missing.
var ErrUnavailable = errors.New("netfault: network namespaces unavailable")

// Namespace is a network namespace joined to the host by a veth pair.
type Namespace struct {
	Name     string       // the namespace, for `ip netns exec`
	HostLink string       // the veth end on the host
	Link     string       // the veth end inside the namespace
	HostAddr netip.Addr   // the host's address on the link
	Addr     netip.Addr   // the namespace's address on the link
	subnet   netip.Prefix // the link's /30
	table    string       // the nftables table, on each side

	mu    sync.Mutex // serialises fault changes
	fault string     // the rule in force ("" when healed), for logs
}

// New sweeps stale objects of earlier runs, creates a namespace and its link, and registers
// their removal with t.Cleanup. It fails the test when the host cannot make one.
func New(t testing.TB) *Namespace {
	t.Helper()
	if err := Available(os.Geteuid(), exec.LookPath); err != nil {
		t.Fatalf("%v", err)
	}
	if n, err := Sweep(); err != nil {
		t.Fatalf("netfault: sweep: %v", err)
	} else if n > 0 {
		t.Logf("netfault: removed %d object(s) an earlier test run left behind", n)
	}
	ns, err := create()
	if ns != nil {
		t.Cleanup(func() {
			if err := ns.remove(); err != nil {
				t.Errorf("netfault: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("netfault: %v", err)
	}
	t.Logf("netfault: namespace %s, link %s (%s) <-> %s (%s)", ns.Name, ns.HostLink, ns.HostAddr, ns.Link, ns.Addr)
	return ns
}

// Available says why this host cannot make namespaces (nil when it can): euid is the
// effective user id, lookPath finds a command (exec.LookPath).
func Available(euid int, lookPath func(string) (string, error)) error {
	var problems []string
	if euid != 0 {
		problems = append(problems, fmt.Sprintf("not root (euid %d): network namespaces and nftables need root", euid))
	}
	for cmd, pkg := range map[string]string{"ip": "iproute2", "nft": "nftables"} {
		if _, err := lookPath(cmd); err != nil {
			problems = append(problems, fmt.Sprintf("%s not found (Debian package %s; scripts/test-deps.sh installs it)", cmd, pkg))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(problems, "; "))
}

// create makes the namespace, the link, its addresses and the empty tables. On error it
// returns what it made so far (for remove) with the error.
func create() (*Namespace, error) {
	id := randomHex(3)
	pid := strconv.Itoa(os.Getpid())
	ns := &Namespace{
		Name:     nsPrefix + pid + "-" + id,
		HostLink: linkPrefix + id + "h",
		Link:     linkPrefix + id + "n",
		table:    tablePrefix + pid + "_" + id,
	}
	if err := run(nil, "ip", "netns", "add", ns.Name); err != nil {
		return nil, err
	}
	if err := run(nil, "ip", "link", "add", ns.HostLink, "type", "veth", "peer", "name", ns.Link, "netns", ns.Name); err != nil {
		return ns, err
	}
	if err := run(nil, "ip", "link", "set", "dev", ns.HostLink, "alias", aliasPrefix+pid+" ns="+ns.Name); err != nil {
		return ns, err
	}
	if err := ns.address(); err != nil {
		return ns, err
	}
	steps := [][]string{
		{"ip", "link", "set", "dev", ns.HostLink, "up"},
		{"ip", "-n", ns.Name, "link", "set", "dev", "lo", "up"},
		{"ip", "-n", ns.Name, "link", "set", "dev", ns.Link, "up"},
	}
	for _, s := range steps {
		if err := run(nil, s[0], s[1:]...); err != nil {
			return ns, err
		}
	}
	if err := ns.nft(false, ns.tableScript(ns.HostLink)); err != nil {
		return ns, err
	}
	if err := ns.nft(true, ns.tableScript(ns.Link)); err != nil {
		return ns, err
	}
	return ns, nil
}

// address picks a /30 in 10.231.0.0/16 that no host address uses and assigns it, under the
// host-wide lock, so two test binaries never pick the same one. It also gives the /30 an
// unreachable route of a lower priority than the link's own: while the link is down, the host
// answers "no route to host" instead of sending the packets along its default route.
func (ns *Namespace) address() error {
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("netfault: address lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("netfault: address lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing unlocks anyway
	used, err := hostPrefixes()
	if err != nil {
		return err
	}
	routes, err := hostRoutes()
	if err != nil {
		return err
	}
	used = append(used, routes...)
	for attempt := 0; attempt < 100; attempt++ {
		n, err := rand.Int(rand.Reader, big.NewInt(256*64))
		if err != nil {
			return err
		}
		block := int(n.Int64())
		base := netip.AddrFrom4([4]byte{10, 231, byte(block / 64), byte(block % 64 * 4)})
		subnet := netip.PrefixFrom(base, 30)
		if overlapsAny(subnet, used) {
			continue
		}
		ns.HostAddr, ns.Addr = base.Next(), base.Next().Next()
		if err := run(nil, "ip", "addr", "add", netip.PrefixFrom(ns.HostAddr, 30).String(), "dev", ns.HostLink); err != nil {
			return err
		}
		if err := run(nil, "ip", "-n", ns.Name, "addr", "add", netip.PrefixFrom(ns.Addr, 30).String(), "dev", ns.Link); err != nil {
			return err
		}
		if err := run(nil, "ip", "route", "add", "unreachable", subnet.String(), "metric", routeMetric, "proto", routeProto); err != nil {
			return err
		}
		ns.subnet = subnet
		return nil
	}
	return errors.New("netfault: no free /30 in 10.231.0.0/16 after 100 tries")
}

// hostPrefixes lists the IPv4 prefixes of the host's addresses.
func hostPrefixes() ([]netip.Prefix, error) {
	out, err := output(nil, "ip", "-j", "-4", "addr", "show")
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("netfault: ip -j addr show: %w", err)
	}
	var prefixes []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if addr, err := netip.ParseAddr(a.Local); err == nil {
				prefixes = append(prefixes, netip.PrefixFrom(addr, a.PrefixLen).Masked())
			}
		}
	}
	return prefixes, nil
}

// hostRoutes lists the prefixes of the host's routes marked as the package's.
func hostRoutes() ([]netip.Prefix, error) {
	out, err := output(nil, "ip", "-j", "-4", "route", "show", "proto", routeProto)
	if err != nil {
		return nil, err
	}
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("netfault: ip -j route show: %w", err)
	}
	var prefixes []netip.Prefix
	for _, r := range routes {
		if p, err := netip.ParsePrefix(r.Dst); err == nil {
			prefixes = append(prefixes, p)
		}
	}
	return prefixes, nil
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if p.Overlaps(u) {
			return true
		}
	}
	return false
}

// Command is argv run inside the namespace: ip netns exec NAME argv... (ip execs argv in
// place, so the process is argv's own).
func (ns *Namespace) Command(argv ...string) []string {
	return append([]string{"ip", "netns", "exec", ns.Name}, argv...)
}

// Exec runs argv inside the namespace to completion and returns its combined output.
func (ns *Namespace) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	full := ns.Command(argv...)
	out, err := exec.CommandContext(ctx, full[0], full[1:]...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("netfault: %s: %w: %s", strings.Join(full, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// remove kills the namespace's processes, deletes the namespace (which deletes the link), the
// host's table and the unreachable route.
func (ns *Namespace) remove() error {
	err := removeObjects(ns.Name, ns.HostLink, ns.table)
	if ns.subnet.IsValid() {
		err = errors.Join(err, removeRoute(ns.subnet))
	}
	return err
}

// removeRoute deletes the package's unreachable route for subnet, if it is still there.
func removeRoute(subnet netip.Prefix) error {
	err := run(nil, "ip", "route", "del", "unreachable", subnet.String(), "metric", routeMetric, "proto", routeProto)
	if err != nil {
		if routes, lerr := hostRoutes(); lerr == nil && !slices.Contains(routes, subnet) {
			return nil // gone meanwhile (a sweep of another test binary)
		}
	}
	return err
}

// removeObjects removes a namespace (its processes first), a host link and a host table; any
// may be empty or already gone.
func removeObjects(nsName, hostLink, table string) error {
	var errs []error
	if nsName != "" && exists("/run/netns/"+nsName) {
		killNamespace(nsName)
		if err := run(nil, "ip", "netns", "del", nsName); err != nil {
			errs = append(errs, err)
		}
	}
	if hostLink != "" && exists("/sys/class/net/"+hostLink) {
		if err := run(nil, "ip", "link", "del", hostLink); err != nil && exists("/sys/class/net/"+hostLink) {
			errs = append(errs, err)
		}
	}
	if table != "" {
		if err := run(nil, "nft", "delete", "table", "netdev", table); err != nil && hostTableExists(table) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killNamespace sends SIGKILL to every process in the namespace, and to every "ip netns exec"
// of it that has not joined it yet (one started just before the cleanup: "ip netns pids" does
// not list it, and once it joins it would outlive the namespace's name), and waits (briefly)
// until none is left.
func killNamespace(name string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		// joining first: a process it misses has exec'd its command, so it is in the
		// namespace by the time "ip netns pids" looks.
		pids := joining(name)
		out, _ := output(nil, "ip", "netns", "pids", name)
		pids = append(pids, strings.Fields(string(out))...)
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// joining lists the processes whose command line is still "ip netns exec <name> ...": between
// their start and their exec of the command they may or may not be inside the namespace.
func joining(name string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("\x00netns\x00exec\x00" + name + "\x00")
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv0, rest, ok := bytes.Cut(cmdline, []byte{0})
		if ok && filepath.Base(string(argv0)) == "ip" && bytes.HasPrefix(append([]byte{0}, rest...), want) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func hostTableExists(table string) bool {
	return run(nil, "nft", "list", "table", "netdev", table) == nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// run runs a command to completion; its error carries the command line and its output.
func run(stdin []byte, name string, args ...string) error {
	_, err := output(stdin, name, args...)
	return err
}

func output(stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("netfault: %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}
