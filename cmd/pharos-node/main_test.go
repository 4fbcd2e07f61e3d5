package main

import (
	"os"
	"testing"
)

// TestMain applies main's process-wide logging settings, as the binary does. A test binary
// started by TestAckedChaos with chaosChildEnv set is `pharos-node send` instead: it runs no
// test (runChaosChild exits).
func TestMain(m *testing.M) {
	configureLogging()
	if raw, ok := os.LookupEnv(chaosChildEnv); ok {
		runChaosChild(raw)
	}
	os.Exit(m.Run())
}
