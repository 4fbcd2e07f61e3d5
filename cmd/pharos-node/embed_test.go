package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// examples/embed, a separate module embedding Pharos Node with the replace of Ergo that every
// embedder needs, builds and vets.
func TestEmbedExampleBuilds(t *testing.T) {
	for _, args := range [][]string{{"build", "-o", filepath.Join(t.TempDir(), "embed"), "."}, {"vet", "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = "../../examples/embed"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v in examples/embed: %v\n%s", args, err, out)
		}
	}
}
