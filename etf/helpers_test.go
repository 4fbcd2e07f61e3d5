package etf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// strictEqual compares decoded values exactly: same Go types (int64 is not *big.Int, List is not
// ImproperList), floats by bits, Maps as sets of entries. Binaries compare by content (nil == empty).
func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case Tuple:
		y, ok := b.(Tuple)
		return ok && sliceEqual(x, y)
	case List:
		y, ok := b.(List)
		return ok && sliceEqual(x, y)
	case ImproperList:
		y, ok := b.(ImproperList)
		return ok && sliceEqual(x.Elems, y.Elems) && strictEqual(x.Tail, y.Tail)
	case Map:
		y, ok := b.(Map)
		if !ok || len(x) != len(y) {
			return false
		}
		// Index y by the canonical encoding of its keys: linear, even for maps of a million entries.
		enc := encoder{maxDepth: equalMaxDepth, canonical: true}
		index := make(map[string][]int, len(y))
		for j, f := range y {
			k, err := enc.term(nil, f.Key, 0)
			if err != nil {
				return false
			}
			index[string(k)] = append(index[string(k)], j)
		}
		used := make([]bool, len(y))
	outer:
		for _, e := range x {
			k, err := enc.term(nil, e.Key, 0)
			if err != nil {
				return false
			}
			for _, j := range index[string(k)] {
				if !used[j] && strictEqual(e.Key, y[j].Key) && strictEqual(e.Value, y[j].Value) {
					used[j] = true
					continue outer
				}
			}
			return false
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case BitBinary:
		y, ok := b.(BitBinary)
		return ok && x.Bits == y.Bits && bytes.Equal(x.Bytes, y.Bytes)
	case *big.Int:
		y, ok := b.(*big.Int)
		return ok && x.Cmp(y) == 0
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case Fun:
		y, ok := b.(Fun)
		if !ok {
			return false
		}
		xf, yf := x.Free, y.Free
		x.Free, y.Free = nil, nil
		return reflect.DeepEqual(x, y) && sliceEqual(xf, yf)
	}
	return reflect.DeepEqual(a, b)
}

func sliceEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strictEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// show formats a value for failure messages.
func show(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

// checkRoundTrip re-encodes a decoded value and decodes it again: the result must be the same value.
func checkRoundTrip(t testing.TB, name string, v any) {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatalf("%s: re-encode of decoded %s: %v", name, show(v), err)
	}
	v2, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("%s: decode of re-encoded %x: %v", name, b, err)
	}
	if !strictEqual(v, v2) || !Equal(v, v2) {
		t.Fatalf("%s: round trip changed the value:\n was %s\n now %s", name, show(v), show(v2))
	}
	b2, err := Marshal(v2)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("%s: second encoding differs (%v):\n %x\n %x", name, err, b, b2)
	}
}

// checkPrefixes feeds prefixes of a valid term to decode: the empty one must give io.EOF, every other
// io.ErrUnexpectedEOF. Long inputs are sampled.
func checkPrefixes(t testing.TB, name string, data []byte, decode func([]byte) error) {
	t.Helper()
	if err := decode(data[:0]); err != io.EOF {
		t.Fatalf("%s: empty input: got %v, want io.EOF", name, err)
	}
	for _, n := range prefixLengths(len(data)) {
		err := decode(data[:n])
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s: prefix of %d of %d bytes: got %v, want io.ErrUnexpectedEOF", name, n, len(data), err)
		}
	}
}

func prefixLengths(total int) []int {
	var out []int
	if total <= 4096 {
		for n := 1; n < total; n++ {
			out = append(out, n)
		}
		return out
	}
	for n := 1; n < 256; n++ {
		out = append(out, n, total-n)
	}
	for n := 256; n < total-256; n += (total - 512) / 512 {
		out = append(out, n)
	}
	return out
}

const corpusDir = "testdata/fuzz/FuzzDecode"

// readCorpus returns the seed files of FuzzDecode by file name.
func readCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatalf("reading %s: %v", corpusDir, err)
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(corpusDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data, err := parseCorpusFile(raw)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out[e.Name()] = data
	}
	return out
}

// parseCorpusFile reads go's fuzz corpus format holding one []byte.
func parseCorpusFile(raw []byte) ([]byte, error) {
	lines := strings.SplitN(strings.TrimSpace(string(raw)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a go fuzz corpus file")
	}
	body := strings.TrimSpace(lines[1])
	if !strings.HasPrefix(body, "[]byte(") || !strings.HasSuffix(body, ")") {
		return nil, fmt.Errorf("not a []byte entry")
	}
	s, err := strconv.Unquote(body[len("[]byte(") : len(body)-1])
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func formatCorpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// writeCorpus adds seed files, skipping content already present under any name.
func writeCorpus(t testing.TB, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, data := range readCorpus(t) {
		have[string(data)] = true
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	written := 0
	for _, n := range names {
		data := files[n]
		if have[string(data)] {
			continue
		}
		have[string(data)] = true
		if err := os.WriteFile(filepath.Join(corpusDir, n), formatCorpusFile(data), 0o644); err != nil {
			t.Fatal(err)
		}
		written++
	}
	t.Logf("wrote %d new seed files to %s", written, corpusDir)
}
