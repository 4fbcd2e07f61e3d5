package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pharos-node/pharos-node/spill"
)

// layoutFile is the spill directory's description of its shards, SpillDir/cluster.json.
const layoutFile = "cluster.json"

// layout is what cluster.json holds: the directory's identity (the first part of every shard's
// SourceId) and the number of shards its records were routed over. Records of a key wait in
// the directory of the shard the key hashed to; with another number of shards the key's new
// records would go elsewhere and overtake them, so the number is kept.
type layout struct {
	Version  int    `json:"version"`
	SourceID string `json:"source_id"`
	Shards   int    `json:"shards"`
}

// loadLayout reads dir's layout, or writes a new one for shards. A layout of another number of
// shards is replaced only while none of its shard directories holds a record (ErrLayout
// otherwise).
func loadLayout(dir string, shards int) (layout, error) {
	path := filepath.Join(dir, layoutFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		id := make([]byte, 8)
		if _, err := rand.Read(id); err != nil {
			return layout{}, fmt.Errorf("cluster: %w", err)
		}
		l := layout{Version: 1, SourceID: hex.EncodeToString(id), Shards: shards}
		return l, writeLayout(dir, l)
	case err != nil:
		return layout{}, fmt.Errorf("cluster: read %s: %w", path, err)
	}
	var l layout
	if err := json.Unmarshal(data, &l); err != nil || l.Version != 1 || l.SourceID == "" || l.Shards < 1 {
		return layout{}, fmt.Errorf("%w: %s is not a layout this version reads (%q)", ErrLayout, path, data)
	}
	if l.Shards == shards {
		return l, nil
	}
	for i := range l.Shards {
		sub := filepath.Join(dir, laneDir(laneLabel(i, l.Shards)))
		if _, err := os.Stat(sub); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		rep, err := spill.Inspect(sub)
		if err != nil {
			return layout{}, fmt.Errorf("cluster: inspect %s: %w", sub, err)
		}
		if rep.Records > 0 {
			return layout{}, fmt.Errorf("%w: %s holds records routed over %d shards, not %d: keep %d shards until it is empty",
				ErrLayout, dir, l.Shards, shards, l.Shards)
		}
	}
	l.Shards = shards
	return l, writeLayout(dir, l)
}

// writeLayout writes l as dir's layout file: a temporary file, synced, renamed, the directory
// synced.
func writeLayout(dir string, l layout) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	tmp := filepath.Join(dir, layoutFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, layoutFile))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cluster: write the layout: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cluster: sync %s: %w", dir, err)
	}
	return nil
}
