package main

// preflight: every check `run` makes before it starts anything, shared with `config check` so
// the two cannot disagree. config.Load has checked keys and values; this adds what needs the
// machine: the cookie and its file's mode, ERL_EPMD_PORT, the host name, the TLS files, the
// spill directory.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/node"
)

// checked is what preflight found.
type checked struct {
	cookie     string // never printed
	cookieFrom string // "PHAROS_COOKIE" or the file
	nodeName   string // node.name, or pharos@<host>
	epmdPort   int
	errs       []error // *config.KeyError each
	warnings   []config.Warning
}

func (c *checked) bad(key, source, format string, args ...any) {
	c.errs = append(c.errs, &config.KeyError{Key: key, Source: source, Reason: fmt.Sprintf(format, args...)})
}

// err joins the problems found, nil if none.
func (c *checked) err() error { return errors.Join(c.errs...) }

func preflight(cfg config.Config, getenv func(string) string) *checked {
	c := &checked{warnings: cfg.Warnings()}
	if otlpTransport(cfg) {
		// No Erlang distribution: no cookie, no EPMD, no tls.*.
		c.cookieFrom = "nowhere: not used with brain.transport otlp"
		c.nodeName = cfg.Node.Name
		if c.nodeName == "" {
			c.nodeName = "pharos@localhost"
			if host, err := os.Hostname(); err == nil {
				c.nodeName = "pharos@" + host
			}
		}
		preflightOTLP(cfg, c)
		if dir := cfg.Spill.Dir; dir != "" {
			if err := checkSpillDir(dir); err != nil {
				c.bad("spill.dir", cfg.Origin("spill.dir"), "%v", err)
			}
		}
		return c
	}
	cookie, err := config.CookieFromEnv(getenv, cfg.Node.CookieFile)
	var ke *config.KeyError
	if errors.As(err, &ke) && ke.Source == "" && cfg.Origin(ke.Key) != "default" {
		ke.Source = cfg.Origin(ke.Key)
	}
	if err != nil {
		c.errs = append(c.errs, err)
	}
	c.cookie, c.cookieFrom = cookie, "PHAROS_COOKIE"
	if getenv("PHAROS_COOKIE") == "" {
		c.cookieFrom = cfg.Node.CookieFile
		if c.cookieFrom == "" {
			c.cookieFrom = filepath.Join(getenv("HOME"), ".erlang.cookie")
		}
	}
	c.nodeName = cfg.Node.Name
	if c.nodeName == "" {
		if host, err := os.Hostname(); err != nil {
			c.bad("node.name", "", "not set, and no host name: %v", err)
		} else {
			c.nodeName = "pharos@" + host
		}
	}
	c.epmdPort = cfg.Node.EpmdPort
	if c.epmdPort == 0 {
		if c.epmdPort, err = node.EPMDPortFromEnv(getenv); err != nil {
			c.bad("node.epmd_port", "env ERL_EPMD_PORT", "%v", err)
		}
	}
	if t := cfg.TLS; t.Enabled {
		files := []struct{ key, path string }{{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}}
		readable := true
		for _, f := range files {
			if f.path == "" {
				continue
			}
			if fh, err := os.Open(f.path); err != nil {
				c.bad(f.key, cfg.Origin(f.key), "cannot read %s: %v", f.path, errors.Unwrap(err))
				readable = false
			} else {
				fh.Close()
			}
		}
		if readable {
			if _, err := node.TLSConfig(node.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
				ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}, false); err != nil {
				key := "tls.ca_file"
				if t.CertFile != "" {
					key = "tls.cert_file"
				}
				c.bad(key, cfg.Origin(key), "%v", err)
			}
		}
	}
	if dir := cfg.Spill.Dir; dir != "" {
		if err := checkSpillDir(dir); err != nil {
			c.bad("spill.dir", cfg.Origin("spill.dir"), "%v", err)
		}
	}
	return c
}

// checkSpillDir checks that dir is a directory this process can write, or can be created: its
// nearest existing ancestor is a directory it can write.
func checkSpillDir(dir string) error {
	const wx = 0x2 | 0x1 // W_OK | X_OK
	p := dir
	for {
		info, err := os.Stat(p)
		if err == nil {
			if !info.IsDir() {
				if p == dir {
					return fmt.Errorf("%s is not a directory", dir)
				}
				return fmt.Errorf("cannot create %s: %s is not a directory", dir, p)
			}
			if err := syscall.Access(p, wx); err != nil {
				if p == dir {
					return fmt.Errorf("%s is not writable by this user (uid %d): %v", dir, os.Getuid(), err)
				}
				return fmt.Errorf("cannot create %s: %s is not writable by this user (uid %d)", dir, p, os.Getuid())
			}
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return fmt.Errorf("cannot create %s", dir)
		}
		p = parent
	}
}
