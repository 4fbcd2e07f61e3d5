// Command licenses writes the licenses of what pharos-node links: `-table` the Markdown table
// of THIRD_PARTY_LICENSES.md, `-texts` every license file in full (the .deb's copyright file).
// Run from the repository's root; `make licenses` and `make package` call it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/pharos-node/pharos-node/internal/licenses"
)

func main() {
	texts := flag.Bool("texts", false, "write the full license texts instead of the table")
	pkg := flag.String("pkg", "./cmd/pharos-node", "the binary's package")
	flag.Parse()
	mods, err := licenses.List(context.Background(), ".", *pkg)
	if err == nil {
		if *texts {
			err = licenses.WriteTexts(os.Stdout, "LICENSE", mods)
		} else {
			err = licenses.WriteTable(os.Stdout, "pharos-node", mods)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
