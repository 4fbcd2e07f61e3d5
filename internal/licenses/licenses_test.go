package licenses

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// THIRD_PARTY_LICENSES.md lists exactly what pharos-node links today; `make licenses` rewrites it.
func TestTableInSync(t *testing.T) {
	mods, err := List(context.Background(), "../..", "./cmd/pharos-node")
	require.NoError(t, err)
	var got bytes.Buffer
	require.NoError(t, WriteTable(&got, "pharos-node", mods))
	want, err := os.ReadFile("../../THIRD_PARTY_LICENSES.md")
	require.NoError(t, err)
	assert.Equal(t, string(want), got.String(), "THIRD_PARTY_LICENSES.md is out of date: run make licenses")
	paths := map[string]string{}
	for _, m := range mods {
		paths[m.Path] = m.License
	}
	assert.Equal(t, "MIT", paths["ergo.services/ergo"])
	assert.Equal(t, "BSD-3-Clause", paths["std"])
}

func TestClassify(t *testing.T) {
	for name, want := range map[string]string{
		"/usr/share/common-licenses/Apache-2.0": "Apache-2.0",
		"../../LICENSE":                         "Apache-2.0",
	} {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		assert.Equal(t, want, Classify(string(b)), name)
	}
	assert.Equal(t, "", Classify("All rights reserved. Do not copy."))
	assert.Equal(t, "ISC", Classify("Permission to use, copy, modify, and/or distribute this software"))
}
