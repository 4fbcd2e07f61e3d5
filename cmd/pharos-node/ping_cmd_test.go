package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

func TestPing(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := runPing(context.Background(), args, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	t.Run("cookie from the environment", func(t *testing.T) {
		t.Setenv("PHAROS_COOKIE", b.Cookie)
		code, out, errOut := run(brainArgs(b)...)
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "pong from pharos_brain")
		assert.Contains(t, out, "round trip")
		// and nothing on stderr: the node stops gracefully before the command returns, so
		// no process of it logs a kill as an error, or writes at all, afterwards
		assert.Empty(t, errOut)
	})
	t.Run("cookie from the Brain's ~/.erlang.cookie", func(t *testing.T) {
		t.Setenv("PHAROS_COOKIE", "")
		t.Setenv("HOME", b.Home)
		code, _, errOut := run(brainArgs(b)...)
		require.Equal(t, 0, code, errOut)
	})
	t.Run("static route without EPMD", func(t *testing.T) {
		t.Setenv("PHAROS_COOKIE", b.Cookie)
		port := b.Eval(`{ok, [{_, P}]} = erl_epmd:names(), P`) // the Brain's own distribution port
		args := brainArgs(b, "--brain-addr", "127.0.0.1:"+port)
		for i, a := range args { // no EPMD at all
			if a == "--epmd-port" {
				args[i+1] = "1"
			}
		}
		code, _, errOut := run(args...)
		require.Equal(t, 0, code, errOut)
	})
	t.Run("wrong cookie", func(t *testing.T) {
		t.Setenv("PHAROS_COOKIE", "wrong-cookie-value")
		start := time.Now()
		code, _, errOut := run(brainArgs(b)...)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "wrong cookie")
		assert.NotContains(t, errOut, "wrong-cookie-value")
		assert.Less(t, time.Since(start), 5*time.Second)
	})
	t.Run("no such process", func(t *testing.T) {
		t.Setenv("PHAROS_COOKIE", b.Cookie)
		args := brainArgs(b)
		args[3] = "nobody_here"
		code, _, errOut := run(args...)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "no process registered")
	})
	t.Run("unknown node", func(t *testing.T) {
		t.Setenv("PHAROS_COOKIE", b.Cookie)
		args := brainArgs(b)
		args[1] = "ghost@127.0.0.1"
		code, _, errOut := run(args...)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "not registered")
	})
	t.Run("usage", func(t *testing.T) {
		code, _, _ := run()
		assert.Equal(t, 2, code)
	})
}

func TestCookieFileRules(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cookie")
	require.NoError(t, os.WriteFile(path, []byte("s3cret\n"), 0o644))
	d := distFlags{cfg: config.Config{Node: config.Node{CookieFile: path}}}
	noEnv := func(string) string { return "" }
	_, err := d.cookie(noEnv)
	require.Error(t, err, "a cookie file others can read is refused")
	assert.NotContains(t, err.Error(), "s3cret")
	require.NoError(t, os.Chmod(path, 0o400))
	c, err := d.cookie(noEnv)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", c)
	c, err = d.cookie(func(k string) string {
		if k == "PHAROS_COOKIE" {
			return "from-env"
		}
		return ""
	})
	require.NoError(t, err)
	assert.Equal(t, "from-env", c)
	home := t.TempDir()
	_, err = (&distFlags{}).cookie(func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	})
	require.Error(t, err, "no ~/.erlang.cookie")
	_ = strconv.Itoa
}
