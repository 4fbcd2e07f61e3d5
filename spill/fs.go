package spill

import (
	"errors"
	"io"
	"os"
	"slices"
	"syscall"
)

// FS is the seam between the log and the filesystem: the few operations the log performs, on
// full paths. OSFS is the real one; tests wrap it to inject faults (short writes, ENOSPC, failed
// syncs).
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	// ReadDir returns the names of the entries of a directory, sorted.
	ReadDir(name string) ([]string, error)
	MkdirAll(name string, perm os.FileMode) error
	// SyncDir makes the directory's entries (files created, renamed, removed) durable.
	SyncDir(name string) error
	// Lock takes an exclusive advisory lock on the file name (creating it), or fails with
	// ErrLocked if someone holds it. Closing the result releases it.
	Lock(name string) (io.Closer, error)
}

// File is an open file: positioned reads and writes, sync, truncate, size.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
}

// OSFS is the operating system's filesystem.
type OSFS struct{}

var _ FS = OSFS{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// OpenFile opens a file with os.OpenFile.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

// Remove removes a file.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename renames a file, replacing newname.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// ReadDir lists a directory.
func (OSFS) ReadDir(name string) ([]string, error) {
	ents, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	slices.Sort(names)
	return names, nil
}

// MkdirAll creates a directory and its parents.
func (OSFS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }

// SyncDir fsyncs a directory.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock takes a flock(2) on name. The kernel drops it when the process dies.
func (OSFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return f, nil
}

// readWhole reads a small file entirely.
func readWhole(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > 1<<20 {
		size = 1 << 20
	}
	b := make([]byte, size)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// writeAtomic replaces name with data: it writes name.tmp, fsyncs it, renames it over name and
// fsyncs the directory. On error the tmp file is removed and name is untouched.
func writeAtomic(fsys FS, dir, name string, data []byte) (err error) {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return writeErr("create", tmp, err)
	}
	defer func() {
		if err != nil {
			fsys.Remove(tmp)
		}
	}()
	n, err := f.WriteAt(data, 0)
	if err == nil && n < len(data) {
		err = errShortWrite
	}
	if err != nil {
		f.Close()
		return writeErr("write", tmp, err)
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return writeErr("sync", tmp, err)
	}
	if err = f.Close(); err != nil {
		return writeErr("close", tmp, err)
	}
	if err = fsys.Rename(tmp, name); err != nil {
		return writeErr("rename", name, err)
	}
	if err = fsys.SyncDir(dir); err != nil {
		return writeErr("sync", dir, err)
	}
	return nil
}
