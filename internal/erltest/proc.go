package erltest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What the harness reads from /proc: the processes it started (each carries ownerEnv, set to
// the pid of the test binary that started it), their states and their CPU time.

// statFields returns the fields of a /proc .../stat file after the command name, which may
// hold spaces and parentheses: [0] is the state, [2] the process group, [11] and [12] utime and
// stime (fields 3, 5, 14 and 15 of proc(5)).
func statFields(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("%s: unexpected %q", path, data)
	}
	return strings.Fields(string(data[i+1:])), nil
}

// processCPUTime is utime + stime of process pid.
func processCPUTime(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	f, err := statFields(path)
	if err != nil {
		return 0, fmt.Errorf("read /proc: %w", err)
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// runningThreads lists the threads (as "pid/tid:state") of process group pgid that are not
// stopped.
func runningThreads(pgid int) ([]string, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/task/[0-9]*/stat")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var running []string
	seen := 0
	for _, path := range stats {
		f, err := statFields(path)
		if err != nil || len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue // gone between the listing and the read, or another group's
		}
		seen++
		if state := f[0]; state != "T" && state != "t" && state != "Z" && state != "X" {
			rel, _ := filepath.Rel("/proc", filepath.Dir(filepath.Dir(path)))
			running = append(running, rel+"/"+filepath.Base(filepath.Dir(path))+":"+state)
		}
	}
	if seen == 0 {
		return nil, fmt.Errorf("no thread of process group %d in /proc", pgid)
	}
	return running, nil
}

// harnessProcess is a live process some test binary's harness started.
type harnessProcess struct {
	pid   int
	owner string // the test binary's pid
	dir   string // its /proc directory
}

// harnessProcesses lists the processes that carry ownerEnv, zombies excepted.
func harnessProcesses() []harnessProcess {
	envs, _ := filepath.Glob("/proc/[0-9]*/environ")
	var procs []harnessProcess
	for _, p := range envs {
		env, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			ownerPid, ok := bytes.CutPrefix(kv, []byte(ownerEnv+"="))
			if !ok {
				continue
			}
			dir := filepath.Dir(p)
			pid, err := strconv.Atoi(filepath.Base(dir))
			if f, statErr := statFields(filepath.Join(dir, "stat")); err == nil && statErr == nil && len(f) > 0 && f[0] != "Z" {
				procs = append(procs, harnessProcess{pid: pid, owner: string(ownerPid), dir: dir})
			}
			break
		}
	}
	return procs
}

// CheckNoLeaks returns an error naming every process this test binary's harness started that is
// still alive (BEAM nodes, epmd and their children). Call it after m.Run in TestMain.
func CheckNoLeaks() error {
	var left []string
	for _, p := range harnessProcesses() {
		if p.owner != owner() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(p.dir, "cmdline"))
		left = append(left, fmt.Sprintf("pid %d: %s", p.pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	if len(left) > 0 {
		return fmt.Errorf("erltest: %d process(es) left running:\n%s", len(left), strings.Join(left, "\n"))
	}
	return nil
}

// ReapOrphans kills (SIGKILL) every process a harness started for a test binary that is gone:
// a binary killed by a timeout or by a signal runs no t.Cleanup, and leaves its epmd and BEAM
// nodes behind. StartEpmd calls it, so each run clears what an earlier one left. It returns how
// many processes it killed.
func ReapOrphans() int {
	killed := 0
	for _, p := range harnessProcesses() {
		if _, err := os.Stat("/proc/" + p.owner); err == nil {
			continue // its test binary still runs (or the pid was reused: leave it)
		}
		if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

func owner() string { return strconv.Itoa(os.Getpid()) }
