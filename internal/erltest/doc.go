// Package erltest is the test harness that runs real Erlang/OTP peers for Pharos Node's tests.
//
// It is for tests only. It finds the OTP release named by the PHAROS_OTP environment variable
// (25, 27 or 29; provisioned by scripts/otp.sh), starts a private epmd on a free loopback port,
// builds the reference Brain (test/erlang) with that release's own erlc, starts Brain nodes with
// unique names and cookies, reads their statistics over a small TCP control port, and kills,
// stops, continues and restarts them. Everything it starts is stopped in t.Cleanup, and
// CheckNoLeaks reports any BEAM or epmd process a test left behind.
//
// For network-fault tests, BrainOptions.Netns runs the Brain and its epmd inside a network
// namespace (package netfault makes one), named and reached at the namespace's address
// (BrainOptions.Host), with BrainOptions.TickTime as its net_ticktime; the control port stays
// on the namespace's loopback and is reached from inside it, so faults on the link never
// block the harness.
//
// A missing Erlang installation fails the test: interop tests are never skipped.
package erltest
