package node_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/node"
)

func TestReadCookieFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".erlang.cookie")
	require.NoError(t, os.WriteFile(path, []byte("  sesame\n"), 0o400))
	c, err := node.ReadCookieFile(path)
	require.NoError(t, err)
	assert.Equal(t, "sesame", c)

	t.Setenv("HOME", dir)
	c, err = node.ReadCookieFile("")
	require.NoError(t, err, "the default is ~/.erlang.cookie")
	assert.Equal(t, "sesame", c)

	require.NoError(t, os.Chmod(path, 0o640))
	_, err = node.ReadCookieFile(path)
	require.ErrorIs(t, err, node.ErrCookieFileMode)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "accessible by others")
	assert.NotContains(t, err.Error(), "sesame", "the cookie never appears in errors")

	require.NoError(t, os.Chmod(path, 0o600))
	require.NoError(t, os.WriteFile(path, []byte(" \n"), 0o600))
	_, err = node.ReadCookieFile(path)
	require.ErrorIs(t, err, node.ErrCookieEmpty)

	_, err = node.ReadCookieFile(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
