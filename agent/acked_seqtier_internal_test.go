package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/spill"
)

// After closeNumbering (the agent closes the spill log next) NumberingFile is never written
// again, whatever a killed manager still inside a handler asks for.
func TestSeqTierClosedWritesNoNumbering(t *testing.T) {
	l, err := spill.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tier, err := NewSeqTier(l, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	tier.closeNumbering()
	err = tier.Renumber(0, 1)
	if !errors.Is(err, ErrNumbering) {
		t.Fatalf("Renumber after closeNumbering: %v, want ErrNumbering", err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), NumberingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("numbering file written after closeNumbering: %v", err)
	}
}
