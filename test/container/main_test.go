package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// EnvReleases names the OTP releases the Brain's container runs, e.g. "25 27"; unset, the
// suite runs on PHAROS_OTP, else on 25.
const EnvReleases = "PHAROS_CONTAINER_OTP"

// buildTimeout bounds building the images: the first build of the Debian root filesystem
// takes up to a few minutes, later ones seconds.
const buildTimeout = 10 * time.Minute

func releases() []string {
	v := os.Getenv(EnvReleases)
	if v == "" {
		v = os.Getenv("PHAROS_OTP")
	}
	if v == "" {
		v = "25"
	}
	return strings.Fields(strings.ReplaceAll(v, ",", " "))
}

// forEachRelease runs f as a subtest per OTP release of the Brain's container.
func forEachRelease(t *testing.T, f func(t *testing.T, rel string)) {
	for _, rel := range releases() {
		t.Run("OTP"+rel, func(t *testing.T) { f(t, rel) })
	}
}

// nodeBinary is the static pharos-node that scripts/containers.sh build puts in the image: the
// tests on the host run the same binary.
func nodeBinary() string { return filepath.Join(repoRoot(), "_build", "containers", "pharos-node") }

// buildImages builds pharos-node's image from the working tree and the Brain's image for each
// release (scripts/containers.sh build), and prints the images' sizes.
func buildImages() error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, script(), append([]string{"build"}, releases()...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("scripts/containers.sh build: %w\n%s", err, out.String())
	}
	sizes, err := exec.CommandContext(ctx, script(), "sizes").Output()
	if err != nil {
		return fmt.Errorf("scripts/containers.sh sizes: %w", err)
	}
	fmt.Printf("container: images built in %.0fs:\n%s", time.Since(start).Seconds(), sizes)
	return nil
}

func TestMain(m *testing.M) {
	if err := reapOrphans(); err != nil {
		fmt.Fprintf(os.Stderr, "container: removing what earlier test binaries left: %v\n", err)
		os.Exit(1)
	}
	if err := buildImages(); err != nil {
		fmt.Fprintf(os.Stderr, "container: the suite needs podman and its images (make deps installs podman): %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := leftovers(); err != nil {
		fmt.Fprintf(os.Stderr, "container: %v\n", err)
		code = 1
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "container: %v\n", err)
		code = 1
	}
	os.Exit(code)
}
