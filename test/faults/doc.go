// Package faults is the network-fault suite: it runs only as tests (`go test ./test/faults`,
// part of `make test` on every OTP release) and has no API.
//
// Each fault gets a reference Brain of its own inside a network namespace (package netfault),
// with a short net_ticktime (tickTime), reached over a veth pair. Senders on the host (agents in
// each delivery mode, and the daemon, `pharos-node run` built from this tree and fed over HTTP)
// stream numbered records at a steady rate (rate) while the link suffers the fault: a blackhole
// longer than the tick time, packet loss, or a flapping link. Then the suite waits for every
// sender to drain and checks, from the Brain's sequence tracking, what each mode promises:
//
//	acked               every record exactly once, in order
//	payload (default)   records missing at the Brain <= possibly_lost
//	payload, resend     no record missing (duplicates counted and reported)
//
// It measures, from each sender's state polled every few milliseconds, the detection time
// (fault start to leaving Streaming) and the recovery time (fault end to Streaming again), and
// logs one row per fault and mode. FAULT_TABLE=path appends the rows to a Markdown file;
// FAULT_DEBUG=1 logs every sender's counters while they drain (neither is a PHAROS_ variable:
// the daemon's tests would take one for a setting). docs/reliability.md explains the suite and
// shows the table of a real run.
//
// The tests of the acknowledged mode are in acked_test.go; those of the payload mode, which
// need delivery confirmations, in payload_test.go.
package faults
