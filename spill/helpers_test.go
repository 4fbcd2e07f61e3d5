package spill

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild() // never returns
	}
	goleak.VerifyTestMain(m)
}

// testLogger sends the log's output to t.Log.
func testLogger(t testing.TB) *zerolog.Logger {
	l := zerolog.New(zerolog.ConsoleWriter{Out: tWriter{t}, NoColor: true}).Level(zerolog.InfoLevel)
	return &l
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// small are options for tests: 4 KiB segments, 1 MiB cap.
func small(extra ...Option) []Option {
	return append([]Option{WithSegmentSize(4096), WithMaxBytes(1 << 20)}, extra...)
}

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

func mustOpen(t tb, dir string, opts ...Option) *Log {
	t.Helper()
	l, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// payload is the deterministic content of record i.
func payload(i int) []byte {
	n := 10 + i%90
	b := make([]byte, n)
	copy(b, fmt.Sprintf("record-%d-", i))
	for j := len(fmt.Sprintf("record-%d-", i)); j < n; j++ {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}

// readAll rewinds and reads every untrimmed record.
func readAll(t tb, l *Log) []Record {
	t.Helper()
	l.Rewind()
	var out []Record
	for {
		n := len(out)
		var err error
		out, err = l.Read(out, 1000)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(out) == n {
			return out
		}
	}
}

// segFiles lists the segment files of dir.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// faultFS wraps OSFS. Writes that grow files fail with ENOSPC once the byte budget is spent
// (after a short write of what is left), files cannot be created with an empty budget, and
// syncs (truncations) fail while failSync (failTruncate) is set.
type faultFS struct {
	OSFS
	mu           sync.Mutex
	budget       int64 // bytes that may still be written; < 0 means unlimited
	failSync     bool
	failTruncate bool
	writes       int
}

func newFaultFS() *faultFS { return &faultFS{budget: -1} }

func (f *faultFS) setBudget(n int64) {
	f.mu.Lock()
	f.budget = n
	f.mu.Unlock()
}

func (f *faultFS) setFailSync(v bool) {
	f.mu.Lock()
	f.failSync = v
	f.mu.Unlock()
}

func (f *faultFS) setFailTruncate(v bool) {
	f.mu.Lock()
	f.failTruncate = v
	f.mu.Unlock()
}

// take grants up to n bytes of the budget.
func (f *faultFS) take(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.budget < 0 || int64(n) <= f.budget {
		if f.budget >= 0 {
			f.budget -= int64(n)
		}
		return n, nil
	}
	granted := int(f.budget)
	f.budget = 0
	return granted, syscall.ENOSPC
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 {
		if _, err := f.take(0); err != nil {
			return nil, err
		}
		f.mu.Lock()
		full := f.budget == 0
		f.mu.Unlock()
		if full {
			return nil, &os.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
		}
	}
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	File
	fs *faultFS
}

// WriteAt spends the budget on the bytes that grow the file, as a filesystem allocates blocks:
// overwriting what is there costs nothing.
func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	size, err := f.File.Size()
	if err != nil {
		return 0, err
	}
	inside := int(max(0, min(int64(len(p)), size-off)))
	n, err := f.fs.take(len(p) - inside)
	n += inside
	if n > 0 {
		if m, werr := f.File.WriteAt(p[:n], off); werr != nil {
			return m, werr
		}
	}
	return n, err
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	fail := f.fs.failSync
	f.fs.mu.Unlock()
	if fail {
		return syscall.EIO
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	fail := f.fs.failTruncate
	f.fs.mu.Unlock()
	if fail {
		return syscall.EIO
	}
	return f.File.Truncate(size)
}

var _ io.WriterAt = (*faultFile)(nil)
