package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pharos-node/pharos-node/spill"
)

func runSpillArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = runSpill(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// spillDir makes a spill directory of n records in 4 KiB segments, the first trimmed ones
// trimmed, and returns it with its source id.
func spillDir(t *testing.T, n, trimmed int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := spill.Open(dir, spill.WithSegmentSize(4096), spill.WithMaxBytes(1<<20), spill.WithSourceID("cli-test"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := l.Append(fmt.Appendf(nil, "record %d %s", i, strings.Repeat("x", i%50))); err != nil {
			t.Fatal(err)
		}
	}
	if trimmed > 0 {
		if err := l.Trim(uint64(trimmed - 1)); err != nil { // records are numbered from 0
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, "cli-test"
}

func TestSpillUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate", "/tmp"},
		{"inspect"},
		{"verify", "a", "b"},
		{"repair", "--no-such-flag", "x"},
	} {
		code, _, errOut := runSpillArgs(args...)
		if code != 2 || !strings.Contains(errOut, "usage: pharos-node spill") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and the usage", args, code, errOut)
		}
	}
	if code, out, _ := runSpillArgs("help"); code != 0 || !strings.Contains(out, "exit codes") {
		t.Errorf("help: exit %d", code)
	}
}

func TestSpillInspect(t *testing.T) {
	dir, id := spillDir(t, 200, 50)
	code, out, errOut := runSpillArgs("inspect", dir)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, errOut)
	}
	for _, want := range []string{id, "150 untrimmed", "seq 50..199", "untrimmed from 50", "status: intact", "0000000000000001.seg"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("inspect:\n%s", out)

	// Flags go before or after the directory.
	for _, args := range [][]string{{"inspect", dir, "--json"}, {"inspect", "--json", dir}} {
		code, out, _ = runSpillArgs(args...)
		var v struct {
			Intact   bool   `json:"intact"`
			SourceID string `json:"source_id"`
			Records  int    `json:"records"`
			FirstSeq uint64 `json:"first_seq"`
			LastSeq  uint64 `json:"last_seq"`
			Segments []struct {
				Name    string `json:"name"`
				Records int    `json:"records"`
			} `json:"segments"`
			Damage []any `json:"damage"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
			t.Fatalf("%q: exit %d, %v:\n%s", args, code, err, out)
		}
		if !v.Intact || v.SourceID != id || v.Records != 150 || v.FirstSeq != 50 || v.LastSeq != 199 || len(v.Segments) < 2 || v.Damage == nil {
			t.Fatalf("%q: %+v", args, v)
		}
	}

	if code, _, errOut := runSpillArgs("inspect", filepath.Join(dir, "missing")); code != 1 || errOut == "" {
		t.Errorf("inspect of a missing directory: exit %d", code)
	}
}

func TestSpillVerifyAndRepair(t *testing.T) {
	dir, _ := spillDir(t, 200, 0)
	if code, _, errOut := runSpillArgs("verify", dir); code != 0 {
		t.Fatalf("verify of an intact directory: exit %d: %s", code, errOut)
	}
	// Damage: a flipped byte in the middle of the second segment, and a torn tail.
	seg := filepath.Join(dir, "0000000000000002.seg")
	b, _ := os.ReadFile(seg)
	b[1000] ^= 0xff
	os.WriteFile(seg, b, 0o644)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	last := segs[len(segs)-1]
	st, _ := os.Stat(last)
	os.Truncate(last, st.Size()-3)

	code, out, errOut := runSpillArgs("verify", dir)
	if code != 1 || !strings.Contains(out, "status: DAMAGED") || !strings.Contains(errOut, "corruption") {
		t.Fatalf("verify of a damaged directory: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("verify:\n%s", out)
	code, out, _ = runSpillArgs("verify", "--json", dir)
	var v struct {
		Intact      bool `json:"intact"`
		LostRecords int  `json:"lost_records"`
		Records     int  `json:"records"`
		Damage      []struct {
			Segment string `json:"segment"`
			Reason  string `json:"reason"`
		} `json:"damage"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.Intact || len(v.Damage) != 2 || v.LostRecords != 2 {
		t.Fatalf("verify --json: exit %d, %v, %+v", code, err, v)
	}
	kept := v.Records

	code, out, errOut = runSpillArgs("repair", dir, "-v")
	if code != 0 {
		t.Fatalf("repair: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("repair:\n%s", out)
	for _, want := range []string{"rewritten:", "0000000000000002.seg.broken", "status: intact"} {
		if !strings.Contains(out, want) {
			t.Errorf("repair output lacks %q", want)
		}
	}
	if code, _, errOut := runSpillArgs("verify", dir); code != 0 {
		t.Fatalf("verify after repair: exit %d: %s", code, errOut)
	}
	code, out, _ = runSpillArgs("repair", "--json", dir)
	var r struct {
		After struct {
			Intact  bool `json:"intact"`
			Records int  `json:"records"`
		} `json:"after"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || !r.After.Intact || r.After.Records != kept {
		t.Fatalf("second repair --json: exit %d, %v, %+v", code, err, r)
	}

	// Every intact record is still there, and the log opens without damage.
	l, err := spill.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs, _ := l.Read(nil, 1000)
	if len(recs) != kept || l.Recovery().LostRecords != 0 {
		t.Fatalf("%d records after repair, want %d; recovery %+v", len(recs), kept, l.Recovery())
	}
	if code, _, errOut := runSpillArgs("repair", dir); code != 1 || !strings.Contains(errOut, "in use") {
		t.Fatalf("repair of an open directory: exit %d: %s", code, errOut)
	}
}
