package erltest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// BuildBrain compiles test/erlang with the release's own erlc (OTP 29 refuses BEAM files from
// OTP 25) into _build/pharos/otp-<major>-<hash of the sources>/ebin and returns that directory.
// A build is written to a temporary directory and renamed into place, so concurrent test
// processes never see half a build.
func BuildBrain(rel Release) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	srcDir := filepath.Join(root, "test", "erlang", "src")
	files, err := filepath.Glob(filepath.Join(srcDir, "*"))
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read Brain source: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(data))
		h.Write(data)
	}
	ebin := filepath.Join(root, "_build", "pharos", fmt.Sprintf("otp-%s-%s", rel.Major, hex.EncodeToString(h.Sum(nil))[:12]), "ebin")
	if _, err := os.Stat(filepath.Join(ebin, "pharos_brain.app")); err == nil {
		return ebin, nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(root, "_build"), "brain-build-")
	if err != nil {
		if err := os.MkdirAll(filepath.Join(root, "_build"), 0o755); err != nil {
			return "", err
		}
		if tmp, err = os.MkdirTemp(filepath.Join(root, "_build"), "brain-build-"); err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(tmp)
	var erls []string
	for _, f := range files {
		if strings.HasSuffix(f, ".erl") {
			erls = append(erls, f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rel.Erlc, append([]string{"-Werror", "+debug_info", "-pa", tmp, "-o", tmp}, erls...)...)
	cmd.Env = rel.Environ(nil)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("erlc (OTP %s) of the reference Brain: %w\n%s", rel.Major, err, out)
	}
	app, err := os.ReadFile(filepath.Join(srcDir, "pharos_brain.app.src"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "pharos_brain.app"), app, 0o644); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(ebin), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, ebin); err != nil {
		if _, statErr := os.Stat(filepath.Join(ebin, "pharos_brain.app")); statErr == nil {
			return ebin, nil // another test process won the race
		}
		return "", fmt.Errorf("install Brain build: %w", err)
	}
	return ebin, nil
}
