package httpsec

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// counterVec is pharos_http_<name>{listener, label}, registered with reg or, when another
// guard registered it first, that one.
func counterVec(reg prometheus.Registerer, name, help, label string) (*prometheus.CounterVec, error) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pharos", Subsystem: "http", Name: name, Help: help},
		[]string{"listener", label})
	if reg == nil {
		return v, nil
	}
	err := reg.Register(v)
	if err == nil {
		return v, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return nil, fmt.Errorf("httpsec: register counters: %w", err)
}

// fileStamp is what Watch compares to see that a file changed.
type fileStamp struct {
	path    string
	size    int64
	modTime time.Time
	inode   uint64
	err     bool
}

// stat stamps every configured file.
func (g *Guard) stat() []fileStamp {
	var out []fileStamp
	for _, p := range []string{g.opts.TokenFile, g.opts.CertFile, g.opts.KeyFile, g.opts.ClientCAFile} {
		if p == "" {
			continue
		}
		fs := fileStamp{path: p}
		info, err := os.Stat(p)
		if err != nil {
			fs.err = true
		} else {
			fs.size, fs.modTime = info.Size(), info.ModTime()
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				fs.inode = st.Ino
			}
		}
		out = append(out, fs)
	}
	return out
}

func sameStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].path != b[i].path || a[i].size != b[i].size || !a[i].modTime.Equal(b[i].modTime) ||
			a[i].inode != b[i].inode || a[i].err != b[i].err {
			return false
		}
	}
	return true
}

// logSampler lets through at most burst messages per period and counts the others.
type logSampler struct {
	now    func() time.Time
	burst  int
	period time.Duration

	mu          sync.Mutex
	windowStart time.Time
	inWindow    int
	suppressed  int
}

func (s *logSampler) allow() (ok bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.windowStart.IsZero() || now.Sub(s.windowStart) >= s.period || now.Before(s.windowStart) {
		s.windowStart, s.inWindow = now, 0
	}
	if s.inWindow >= s.burst {
		s.suppressed++
		return false, 0
	}
	s.inWindow++
	suppressed, s.suppressed = s.suppressed, 0
	return true, suppressed
}
