package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// ownerLabel marks every container and volume a test binary makes with its pid; names of
// containers, volumes and network namespaces start with namePrefix and the pid too.
const (
	ownerLabel = "pharos.test.owner"
	namePrefix = "pharos-ct-"
)

// Images the suite runs, built by scripts/containers.sh build.
const nodeImage = "localhost/pharos/pharos-node:dev"

func brainImage(rel string) string { return "localhost/pharos/brain:otp" + rel }

// podmanTimeout bounds one podman command (a run of the Brain's image included).
const podmanTimeout = 2 * time.Minute

func owner() string { return strconv.Itoa(os.Getpid()) }

// ownedName is a name for something this test binary makes.
func ownedName(parts ...string) string {
	return namePrefix + owner() + "-" + strings.Join(parts, "-")
}

func repoRoot() string {
	root, err := erltest.RepoRoot()
	if err != nil {
		panic(err) // the source tree is where the test binary was built from
	}
	return root
}

func script() string { return filepath.Join(repoRoot(), "scripts", "containers.sh") }

// podman runs podman, configured as scripts/containers.sh configures it, and returns its
// standard output, trimmed; a failure carries its standard error.
func podman(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, podmanTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script(), append([]string{"podman"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// mustPodman is podman, failing the test on an error.
func mustPodman(t testing.TB, args ...string) string {
	t.Helper()
	out, err := podman(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// podmanExitCode runs podman and returns its exit code (-1 when it did not run to an exit).
func podmanExitCode(args ...string) (int, string) {
	out, err := podman(context.Background(), args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out
	case errors.As(err, &ee):
		return ee.ExitCode(), out + err.Error()
	default:
		return -1, err.Error()
	}
}

// container is a running container the test removes in t.Cleanup, after logging its output if
// the test failed.
type container struct {
	t    testing.TB
	Name string
}

// runContainer starts a detached container: `podman run -d --name NAME` with the owner label,
// then args (options, the image and its command).
func runContainer(t testing.TB, name string, args ...string) *container {
	t.Helper()
	c := &container{t: t, Name: ownedName(name)}
	t.Cleanup(c.remove)
	full := append([]string{"run", "--detach", "--name", c.Name, "--label", ownerLabel + "=" + owner()}, args...)
	mustPodman(t, full...)
	return c
}

func (c *container) remove() {
	if c.t.Failed() {
		logs, err := containerLogs(c.Name, "--tail", "60")
		c.t.Logf("the last lines of container %s (%v):\n%s", c.Name, err, logs)
	}
	if _, err := podman(context.Background(), "rm", "--force", "--volumes", "--time", "0", c.Name); err != nil {
		c.t.Errorf("remove container %s: %v", c.Name, err)
	}
}

// containerLogs returns what container name wrote, standard output and error interleaved as
// `podman logs` gives them (podman's own messages on its standard error too).
func containerLogs(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), podmanTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, script(), append(append([]string{"podman", "logs"}, args...), name)...).CombinedOutput()
	return string(out), err
}

// Logs returns what the container wrote (standard output and error).
func (c *container) Logs() string {
	c.t.Helper()
	out, err := containerLogs(c.Name)
	if err != nil {
		c.t.Fatalf("podman logs %s: %v\n%s", c.Name, err, out)
	}
	return out
}

// Inspect returns one field of `podman inspect`, e.g. "{{.State.ExitCode}}".
func (c *container) Inspect(format string) string {
	c.t.Helper()
	return mustPodman(c.t, "inspect", "--format", format, c.Name)
}

// Wait waits until the container has exited and returns its exit code.
func (c *container) Wait(timeout time.Duration) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := podman(ctx, "wait", c.Name)
	if err != nil {
		c.t.Fatalf("container %s did not exit within %s: %v", c.Name, timeout, err)
	}
	code, err := strconv.Atoi(out)
	if err != nil {
		c.t.Fatalf("podman wait %s: %q", c.Name, out)
	}
	return code
}

// volume makes a named volume the test removes in t.Cleanup (after the containers that use it,
// which were started later).
func volume(t testing.TB, name string) string {
	t.Helper()
	v := ownedName(name)
	mustPodman(t, "volume", "create", "--label", ownerLabel+"="+owner(), v)
	t.Cleanup(func() {
		if _, err := podman(context.Background(), "volume", "rm", "--force", v); err != nil {
			t.Errorf("remove volume %s: %v", v, err)
		}
	})
	return v
}

// ownedContainers lists the containers whose owner label is pid, or whose owner is no longer
// alive when pid is "".
func ownedContainers(pid string) ([]string, error) {
	return ownedBy(pid, "ps", "--all", "--format", `{{.Names}} {{index .Labels "`+ownerLabel+`"}}`)
}

// ownedVolumes lists the named volumes as ownedContainers lists containers.
func ownedVolumes(pid string) ([]string, error) {
	return ownedBy(pid, "volume", "ls", "--format", `{{.Name}} {{index .Labels "`+ownerLabel+`"}}`)
}

// ownedBy runs a podman listing that prints "NAME OWNER" lines, and keeps the names owned by
// pid, or by owners no longer alive when pid is "".
func ownedBy(pid string, list ...string) ([]string, error) {
	args := append(list, "--filter", "label="+ownerLabel)
	out, err := podman(context.Background(), args...)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		alive := false
		if _, err := os.Stat("/proc/" + f[1]); err == nil {
			alive = true
		}
		if (pid != "" && f[1] == pid) || (pid == "" && !alive) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// reapOrphans removes the containers, volumes and network namespaces of test binaries that
// died without their t.Cleanup (killed by a timeout or a signal).
func reapOrphans() error {
	var errs []error
	ctrs, err := ownedContainers("")
	errs = append(errs, err)
	for _, c := range ctrs {
		_, err := podman(context.Background(), "rm", "--force", "--volumes", "--time", "0", c)
		errs = append(errs, err)
	}
	vols, err := ownedVolumes("")
	errs = append(errs, err)
	for _, v := range vols {
		_, err := podman(context.Background(), "volume", "rm", "--force", v)
		errs = append(errs, err)
	}
	errs = append(errs, reapNetns(""))
	return errors.Join(errs...)
}

// leftovers names what this test binary made and did not remove.
func leftovers() error {
	var left []string
	ctrs, err1 := ownedContainers(owner())
	vols, err2 := ownedVolumes(owner())
	nss, err3 := ownedNetns(owner())
	for _, c := range ctrs {
		left = append(left, "container "+c)
	}
	for _, v := range vols {
		left = append(left, "volume "+v)
	}
	for _, n := range nss {
		left = append(left, "network namespace "+n)
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
	}
	return nil
}
