// Package netfault builds network faults for tests: a network namespace joined to the host by a
// veth pair, and faults on that link made with nftables (this kernel has no netem). It is for
// tests only, and needs root, iproute2 (`ip`) and nftables (`nft`); without them New fails the
// test with an error that says what is missing (a fault test never skips).
//
// # Call order
//
//	ns := netfault.New(t)                        // sweeps stale objects, then creates; t.Cleanup removes
//	cmd := exec.Command(ns.Command("erl", ...)...)  // runs inside: ip netns exec NAME erl ...
//	conn, err := ns.DialContext(ctx, "tcp", "127.0.0.1:9000") // a socket inside (its loopback)
//	l, err := ns.Listen("tcp", ns.Addr.String()+":0")   // also ListenPacket: sockets inside
//	ns.Blackhole()                               // every packet on the link dropped, both ways, no RST
//	ns.Loss(30)                                  // 30% of the packets dropped, each direction
//	ns.Heal()                                    // the link clean again
//	ns.LinkDown(); ns.LinkUp()                   // the host's end of the veth down, then up
//	windows := ns.Flap(ctx, down, up, cycles)    // LinkDown for down, LinkUp for up, cycles times
//
// # Names and addresses
//
// Every object carries the suite's prefix and the pid of the test binary that made it: the
// namespace pharosnf-PID-ID, the links pnfIDh (host) and pnfIDn (namespace, whose host-side alias
// names the owner), the nftables tables pharosnf_PID_ID (one on the host, bound to the host's end,
// one inside the namespace, bound to its end). The link is a /30 in 10.231.0.0/16 picked at
// random under a host-wide lock (/run/lock/pharos-netfault.lock) among those no host address
// uses: HostAddr (.1) on the host, Addr (.2) inside, where the namespace's loopback is up too.
//
// # Faults
//
// Faults act on the link only: packets are dropped by netdev ingress hooks on both ends (what
// the wire loses, seen by neither TCP stack as a local error), so the namespace's loopback (a
// control port there, reached with DialContext) is never faulted. Loss draws per packet
// (`numgen random mod 100 < p`). LinkDown sets the host's end down: the namespace's end loses
// its carrier and the host its link route to Addr; an unreachable route for the /30 (protocol
// 231, a higher metric) then answers "no route to host" at once, where the default route would
// otherwise carry the packets elsewhere.
//
// # Cleanup
//
// New registers the removal of its processes (SIGKILL to every pid in the namespace), the
// namespace, the link, the host's table and route with t.Cleanup, so they go even when the
// test fails.
// A test binary killed with -9 runs no cleanup: New (and Sweep) first removes every object with
// the prefix whose owner pid is no longer running, so an earlier run never breaks the next one,
// and objects of a test binary that still runs (a parallel run) are left alone.
//
// # Concurrency
//
// A Namespace's methods may be called from any goroutine; faults replace one another (the
// last call wins).
package netfault
