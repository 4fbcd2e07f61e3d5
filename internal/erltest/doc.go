// Package erltest is the test harness that runs real Erlang/OTP peers for Pharos Node's tests.
//
// It is for tests only. It finds the OTP release named by the PHAROS_OTP environment variable
// (25, 27 or 29; provisioned by scripts/otp.sh), starts a private epmd on a free loopback port,
// builds the reference Brain (test/erlang) with that release's own erlc, starts Brain nodes with
// unique names and cookies, reads their statistics over a small TCP control port, and kills,
// stops, continues and restarts them. Everything it starts is stopped in t.Cleanup, and
// CheckNoLeaks reports any BEAM or epmd process a test left behind.
//
// A missing Erlang installation fails the test: interop tests are never skipped.
package erltest
