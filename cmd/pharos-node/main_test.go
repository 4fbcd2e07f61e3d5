package main

import (
	"os"
	"testing"
)

// TestMain applies main's process-wide logging settings, as the binary does.
func TestMain(m *testing.M) {
	configureLogging()
	os.Exit(m.Run())
}
