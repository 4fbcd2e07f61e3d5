package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// daemonBinary is `pharos-node`, built from this tree by TestMain before any test runs.
var daemonBinary string

// TestMain builds the daemon, runs the suite, and fails it if a goroutine or a process it
// started is left: Ergo's SIGTERM watcher, which node.Stop does not end, excepted.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pharos-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBinary = filepath.Join(dir, "pharos-node")
	if err := buildDaemon(daemonBinary); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreAnyFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	if err := erltest.CheckNoLeaks(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// buildDaemon builds ./cmd/pharos-node into out with the go command ($GO, else go on PATH).
func buildDaemon(out string) error {
	root, err := erltest.RepoRoot()
	if err != nil {
		return err
	}
	goCmd := os.Getenv("GO") // as the Makefile's GO, when exported
	if goCmd == "" {
		goCmd = "go"
	}
	if goCmd, err = exec.LookPath(goCmd); err != nil {
		return fmt.Errorf("faults: no go command to build the daemon: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, "./cmd/pharos-node")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("faults: go build ./cmd/pharos-node: %w\n%s", err, b)
	}
	return nil
}
