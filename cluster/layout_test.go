package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pharos-node/pharos-node/spill"
)

func TestLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spill")
	l, err := loadLayout(dir, 8)
	if err != nil || l.Shards != 8 || len(l.SourceID) != 16 {
		t.Fatalf("new layout: %+v %v", l, err)
	}
	again, err := loadLayout(dir, 8)
	if err != nil || again != l {
		t.Fatalf("layout read again: %+v %v, want %+v", again, err, l)
	}
	// Another number of shards while they are empty (or absent): taken, same identity.
	empty, err := spill.Open(filepath.Join(dir, laneDir(laneLabel(3, 8))))
	if err != nil {
		t.Fatal(err)
	}
	if err := empty.Close(); err != nil {
		t.Fatal(err)
	}
	l4, err := loadLayout(dir, 4)
	if err != nil || l4.Shards != 4 || l4.SourceID != l.SourceID {
		t.Fatalf("relayout of empty shards: %+v %v", l4, err)
	}
	// While a shard holds a record: refused.
	full, err := spill.Open(filepath.Join(dir, laneDir(laneLabel(1, 4))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := full.Append([]byte{131, 106}); err != nil {
		t.Fatal(err)
	}
	if err := full.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := loadLayout(dir, 16); !errors.Is(err, ErrLayout) {
		t.Fatalf("relayout with records held: %v, want ErrLayout", err)
	}
	if l, err := loadLayout(dir, 4); err != nil || l.Shards != 4 {
		t.Fatalf("the same layout: %+v %v", l, err)
	}
	if err := os.WriteFile(filepath.Join(dir, layoutFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadLayout(dir, 4); !errors.Is(err, ErrLayout) {
		t.Fatalf("a damaged layout file: %v, want ErrLayout", err)
	}
	if got := laneLabel(7, 100); got != "07" {
		t.Errorf("laneLabel(7, 100) = %q", got)
	}
	if got := laneLabel(7, 101); got != "007" {
		t.Errorf("laneLabel(7, 101) = %q", got)
	}
}
