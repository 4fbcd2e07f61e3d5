package erltest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvRelease names the environment variable that picks the OTP release for a test run.
const EnvRelease = "PHAROS_OTP"

// DefaultRelease is the release used when EnvRelease is unset.
const DefaultRelease = "25"

// Release is one provisioned Erlang/OTP installation.
type Release struct {
	Major   string // "25", "27" or "29"
	Version string // the full OTP version, as in the OTP_VERSION file
	Root    string // the directory holding bin/erl
	Erl     string
	Erlc    string
	Epmd    string
}

var (
	releaseOnce sync.Map // major -> *releaseResult; per process, read-only after first fill
)

type releaseResult struct {
	once sync.Once
	rel  Release
	err  error
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("erltest: cannot locate source file")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Locate finds the installation of an OTP major release with scripts/otp.sh, without installing anything.
func Locate(major string) (Release, error) {
	v, _ := releaseOnce.LoadOrStore(major, &releaseResult{})
	r := v.(*releaseResult)
	r.once.Do(func() { r.rel, r.err = locate(major) })
	return r.rel, r.err
}

func locate(major string) (Release, error) {
	root, err := RepoRoot()
	if err != nil {
		return Release{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(root, "scripts", "otp.sh"), "root", major).Output()
	if err != nil {
		return Release{}, fmt.Errorf("erltest: scripts/otp.sh root %s: %w", major, err)
	}
	otpRoot := strings.TrimSpace(string(out))
	rel := Release{
		Major: major,
		Root:  otpRoot,
		Erl:   filepath.Join(otpRoot, "bin", "erl"),
		Erlc:  filepath.Join(otpRoot, "bin", "erlc"),
		Epmd:  filepath.Join(otpRoot, "bin", "epmd"),
	}
	if _, err := os.Stat(rel.Erl); err != nil {
		return Release{}, fmt.Errorf("erltest: OTP %s is not installed (run `make otp` or scripts/otp.sh install %s): %w", major, major, err)
	}
	if _, err := os.Stat(rel.Epmd); err != nil {
		// Debian puts epmd beside erts; bin/epmd may be missing from the OTP root.
		if m, _ := filepath.Glob(filepath.Join(otpRoot, "erts-*", "bin", "epmd")); len(m) > 0 {
			rel.Epmd = m[0]
		} else if p, lerr := exec.LookPath("epmd"); lerr == nil && major == "25" {
			rel.Epmd = p
		} else {
			return Release{}, fmt.Errorf("erltest: no epmd in OTP %s at %s", major, otpRoot)
		}
	}
	got, err := rel.evalRaw(ctx, `io:format("~s", [erlang:system_info(otp_release)])`)
	if err != nil {
		return Release{}, fmt.Errorf("erltest: running %s: %w", rel.Erl, err)
	}
	if got != major {
		return Release{}, fmt.Errorf("erltest: %s reports OTP %q, expected %s", rel.Erl, got, major)
	}
	if v, err := os.ReadFile(filepath.Join(otpRoot, "releases", major, "OTP_VERSION")); err == nil {
		rel.Version = strings.TrimSpace(string(v))
	} else {
		rel.Version = major
	}
	return rel, nil
}

// FromEnv returns the release named by PHAROS_OTP (default 25). A missing or broken release
// FAILS the test: interop tests are never skipped.
func FromEnv(t testing.TB) Release {
	t.Helper()
	major := os.Getenv(EnvRelease)
	if major == "" {
		major = DefaultRelease
	}
	rel, err := Locate(major)
	if err != nil {
		t.Fatalf("erltest: Erlang/OTP %s is required for this test: %v", major, err)
	}
	t.Logf("erltest: OTP %s (%s) at %s", rel.Major, rel.Version, rel.Erl)
	return rel
}

// Eval runs one Erlang expression sequence in a throwaway, non-distributed node and returns
// what it printed on stdout. The expressions run inside `-eval`; the node halts afterwards.
// Example: rel.Eval(t, `io:format("~p", [term_to_binary(foo)])`).
func (r Release) Eval(t testing.TB, expr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := r.evalRaw(ctx, expr)
	if err != nil {
		t.Fatalf("erltest: eval on OTP %s failed: %v\nexpression: %s", r.Major, err, expr)
	}
	return out
}

func (r Release) evalRaw(ctx context.Context, expr string) (string, error) {
	full := fmt.Sprintf(`try begin %s end of _ -> erlang:halt(0) catch C:E:S -> io:format(standard_error, "~p:~p~n~p~n", [C, E, S]), erlang:halt(3) end.`, expr)
	cmd := exec.CommandContext(ctx, r.Erl, "-noshell", "-noinput", "-eval", full)
	cmd.Env = r.Environ(nil)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Environ returns the environment for commands of this release: PATH starts with its bin directory.
// extra entries ("K=V") are appended and win.
func (r Release) Environ(extra []string) []string {
	env := make([]string, 0, len(os.Environ())+len(extra)+1)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "ERL_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+filepath.Join(r.Root, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	return append(env, extra...)
}
