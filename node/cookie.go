package node

// The Erlang cookie file, read as erl reads it (auth.erl): ~/.erlang.cookie unless told
// otherwise, refused when others may access it, surrounding white space dropped.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sentinel errors of ReadCookieFile.
var (
	// ErrCookieFileMode: the cookie file may be read or written by its group or others; erl
	// refuses such a file too. chmod 400 it.
	ErrCookieFileMode = errors.New("node: cookie file accessible by others")
	// ErrCookieEmpty: the cookie file holds nothing but white space.
	ErrCookieEmpty = errors.New("node: cookie file empty")
)

// DefaultCookieFile returns ~/.erlang.cookie, the file erl reads.
func DefaultCookieFile() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("node: no home directory for ~/.erlang.cookie: %w", err)
	}
	return filepath.Join(home, ".erlang.cookie"), nil
}

// ReadCookieFile returns the cookie held in the file at path ("" means DefaultCookieFile). The
// file must be accessible by its owner only (ErrCookieFileMode otherwise) and not empty
// (ErrCookieEmpty). The cookie never appears in an error.
func ReadCookieFile(path string) (string, error) {
	if path == "" {
		var err error
		if path, err = DefaultCookieFile(); err != nil {
			return "", err
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("node: cookie file: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %v; chmod 400 it", ErrCookieFileMode, path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("node: cookie file: %w", err)
	}
	cookie := strings.TrimSpace(string(b))
	if cookie == "" {
		return "", fmt.Errorf("%w: %s", ErrCookieEmpty, path)
	}
	return cookie, nil
}
