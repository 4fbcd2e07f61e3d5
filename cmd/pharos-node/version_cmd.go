package main

// pharos-node version and --version: what built this binary. `make build` stamps the version,
// commit and build date with -ldflags -X; without them (go install, go build) they come from
// the module's build information where it has them.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"ergo.services/ergo"
	"github.com/prometheus/client_golang/prometheus"
)

// Set by `make build` with -ldflags "-X main.version=... -X main.commit=... -X main.buildDate=...";
// written only by the linker.
var (
	version   string
	commit    string
	buildDate string
)

// buildInfo is what version prints and pharos_build_info exports.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	Go        string `json:"go"`
	Ergo      string `json:"ergo"`        // the framework's release, e.g. 3.1.0
	ErgoMod   string `json:"ergo_module"` // the module version linked, e.g. v1.999.310
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, BuildDate: buildDate, Go: runtime.Version(),
		Ergo: ergo.FrameworkVersion.Release}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.BuildDate == "" {
					b.BuildDate = s.Value
				}
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "ergo.services/ergo" {
				b.ErgoMod = d.Version
				if d.Replace != nil {
					b.ErgoMod = d.Replace.Version
				}
			}
		}
	}
	for _, p := range []*string{&b.Version, &b.Commit, &b.BuildDate, &b.ErgoMod} {
		if *p == "" {
			*p = "unknown"
		}
	}
	if b.Version == "unknown" {
		b.Version = "devel"
	}
	return b
}

func (b buildInfo) String() string {
	return fmt.Sprintf("pharos-node %s\n  commit:     %s\n  built:      %s\n  go:         %s\n  ergo:       %s (module %s)\n",
		b.Version, b.Commit, b.BuildDate, b.Go, b.Ergo, b.ErgoMod)
}

// collector is the pharos_build_info gauge: 1, with the build as labels.
func (b buildInfo) collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "pharos_build_info",
		Help: "Always 1; the labels say which build of pharos-node is running.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "build_date": b.BuildDate,
			"goversion": b.Go, "ergo_version": b.Ergo},
	})
	g.Set(1)
	return g
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parseFlags("version", fs, args, stdout, stderr); done {
		return code
	}
	b := readBuildInfo()
	if *asJSON {
		line, _ := json.Marshal(b)
		fmt.Fprintln(stdout, string(line))
		return 0
	}
	fmt.Fprint(stdout, b)
	return 0
}
