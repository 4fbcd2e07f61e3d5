package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Files along their seams: no production Go file of the module's packages is over 600 lines
// (scripts/ and examples/ are tools and samples, not the product).
func TestNoProductionFileOver600Lines(t *testing.T) {
	const limit = 600
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case "_build", "scripts", "examples", ".git", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := strings.Count(string(b), "\n"); n > limit {
			t.Errorf("%s: %d lines, over %d: split it along its seams", rel, n, limit)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
