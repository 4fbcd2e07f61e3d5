package ingest

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// beamJSON is what test/erlang/bench/pharos_json_bench.erl measured.
type beamJSON struct {
	release       string
	wallNs, cpuNs float64
	first         []byte
}

// jsonRelease is the OTP release the BEAM side runs on: PHAROS_OTP when it has the json module
// (27 and later), else 27. A release that is not installed fails the benchmark.
func jsonRelease(b *testing.B) erltest.Release {
	major := os.Getenv(erltest.EnvRelease)
	if n, err := strconv.Atoi(major); err != nil || n < 27 {
		major = "27"
	}
	rel, err := erltest.Locate(major)
	if err != nil {
		b.Fatalf("the BEAM side needs OTP 27 or later (its json module): %v", err)
	}
	return rel
}

func runBEAMJSON(b *testing.B, rel erltest.Release, body []byte, perBody int) beamJSON {
	b.Helper()
	root, err := erltest.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	file := filepath.Join(dir, "body.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	compile := exec.CommandContext(ctx, rel.Erlc, "-o", dir, filepath.Join(root, "test", "erlang", "bench", "pharos_json_bench.erl"))
	compile.Env = rel.Environ(nil)
	if out, err := compile.CombinedOutput(); err != nil {
		b.Fatalf("erlc: %v: %s", err, out)
	}
	// No busy-waiting schedulers: their spinning would count as the BEAM's CPU.
	run := exec.CommandContext(ctx, rel.Erl, "+sbwt", "none", "+sbwtdcpu", "none", "+sbwtdio", "none", "-noshell", "-pa", dir,
		"-eval", fmt.Sprintf(`pharos_json_bench:main([%q, "%d", "5"]), halt().`, file, perBody))
	run.Env = rel.Environ(nil)
	out, err := run.Output()
	if err != nil {
		b.Fatalf("erl: %v: %s", err, out)
	}
	var r beamJSON
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		x, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "otp_release":
			r.release = f[1]
		case "wall_ns":
			r.wallNs = x
		case "cpu_ns":
			r.cpuNs = x
		case "records_hex":
			r.first, _ = hex.DecodeString(f[1])
		}
	}
	if r.wallNs <= 0 || r.first == nil {
		b.Fatalf("the Erlang bench printed %q", out)
	}
	return r
}

// BenchmarkJSONVersusBEAM decodes request bodies of 1 and 100 metrics as the HTTP handler does
// (eachRecord, validate) and encodes each record for the wire (etf.AppendMetric), and runs,
// in the same benchmark, an Erlang node doing the same with OTP 27's json module and
// term_to_binary (test/erlang/bench/pharos_json_bench.erl). Neither side has HTTP or a socket:
// BenchmarkHTTPJSON has the handler's whole cost. Figures per record: cpu-ns/record (Go, this
// process's CPU), beam-cpu-ns/record (the Erlang VM's CPU), beam/go (how many times less CPU Go
// takes). Run it with
//
//	PHAROS_OTP=27 go test ./ingest -run '^$' -bench JSONVersusBEAM
func BenchmarkJSONVersusBEAM(b *testing.B) {
	rel := jsonRelease(b)
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			body := benchJSONBody(n)
			beam := runBEAMJSON(b, rel, body, n)
			var fromBEAM etf.Metric
			if err := etf.DecodeMetric(beam.first, &fromBEAM); err != nil {
				b.Fatalf("the Erlang record: %v", err)
			}
			rd := newJSONReader()
			def := recordDefaults{timestampMs: fixedMs, source: "http"}
			var out []byte
			var tags []etf.Tag
			text := unsafe.String(unsafe.SliceData(body), len(body))
			decodeBody := func() {
				var prev *etf.Metric
				var last etf.Metric
				var err error
				tags, err = rd.eachRecord(body, text, 10_000, false, def, tags[:0], func(i int, rec *record, derr error) {
					if derr != nil {
						b.Fatal(derr)
					}
					if err := rec.metric.ValidateAfter(prev, etf.RecordLimits{}); err != nil {
						b.Fatal(err)
					}
					last = rec.metric
					prev = &last
					var aerr error
					if out, aerr = etf.AppendMetric(out[:0], &rec.metric); aerr != nil {
						b.Fatal(aerr)
					}
					if i == 0 && !metricsEqual(rec.metric, fromBEAM) {
						b.Fatalf("Go decodes %+v, the Erlang side %+v", rec.metric, fromBEAM)
					}
				})
				if err != nil {
					b.Fatal(err)
				}
				rd.release()
			}
			b.ReportAllocs()
			start := cpuClock()
			for b.Loop() {
				decodeBody()
			}
			goCPU := reportCPU(b, start, n)
			b.ReportMetric(beam.cpuNs, "beam-cpu-ns/record")
			b.ReportMetric(beam.cpuNs/goCPU, "beam/go")
			b.Logf("OTP %s: json:decode + record + term_to_binary: %.0f ns CPU (%.0f ns wall) per record; Go %.0f ns CPU",
				beam.release, beam.cpuNs, beam.wallNs, goCPU)
		})
	}
}
