// Package licenses lists the third-party code a Go binary links and the license of each module:
// the table in THIRD_PARTY_LICENSES.md and the full texts the .deb ships as its copyright file.
//
// Call order: List (runs `go list -deps` on a package and reads each module's license files from
// the module cache), then WriteTable or WriteTexts. A module whose license this package cannot
// classify is an error, so that a new dependency with an unknown license fails the test that
// keeps THIRD_PARTY_LICENSES.md in sync (TestTableInSync) instead of slipping in.
//
// Regenerate the table with `make licenses`.
package licenses
