package erltest

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBrainChecks runs the reference Brain's own Erlang checks (test/erlang/test/pharos_brain_check.erl)
// on the release under test: validation gives exactly what the original implementation gave, and
// acknowledged batches are counted exactly as their new records counted one by one.
func TestBrainChecks(t *testing.T) {
	rel := FromEnv(t)
	ebin, err := BuildBrain(rel)
	require.NoError(t, err)
	root, err := RepoRoot()
	require.NoError(t, err)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	erlc := exec.CommandContext(ctx, rel.Erlc, "-Werror", "-pa", ebin, "-o", out,
		filepath.Join(root, "test", "erlang", "test", "pharos_brain_check.erl"))
	erlc.Env = rel.Environ(nil)
	b, err := erlc.CombinedOutput()
	require.NoError(t, err, "erlc (OTP %s) of pharos_brain_check: %s", rel.Major, b)

	erl := exec.CommandContext(ctx, rel.Erl, "-noshell", "-noinput", "-pa", ebin, "-pa", out,
		"-eval", "pharos_brain_check:run().")
	erl.Env = rel.Environ([]string{ownerEnv + "=" + owner(), "PHAROS_CHECK_TMP=" + t.TempDir()})
	b, err = erl.CombinedOutput()
	t.Logf("OTP %s:\n%s", rel.Version, b)
	require.NoError(t, err, "pharos_brain_check failed on OTP %s", rel.Major)
	require.True(t, strings.HasSuffix(strings.TrimSpace(string(b)), "ok"), "no final ok")
}
