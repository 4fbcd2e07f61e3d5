package etf

import (
	"bufio"
	"context"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// benchMetric is the record of the benchmarks; test/erlang/bench/pharos_etf_bench.erl times BEAM on the
// same one (metric/0 there).
var benchMetric = Metric{
	Name: "http.server.requests", Kind: Counter, Value: 1234.5,
	Tags:        []Tag{{"host", "web-01"}, {"method", "GET"}, {"status", "200"}},
	TimestampMs: 1700000000123, Source: "pharos-node",
}

// BenchmarkAppendMetric: one op is one record appended into a reused buffer; the goal is 0 allocs/op.
func BenchmarkAppendMetric(b *testing.B) {
	m := benchMetric
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	var err error
	for b.Loop() {
		buf, err = AppendMetric(buf[:0], &m)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeMetric: one op is one record decoded into a reused Metric (one allocation holds its
// strings).
func BenchmarkDecodeMetric(b *testing.B) {
	data, _ := AppendMetric(nil, &benchMetric)
	var m Metric
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := DecodeMetric(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeMetricFresh decodes into a new Metric each time, so Tags is allocated too.
func BenchmarkDecodeMetricFresh(b *testing.B) {
	data, _ := AppendMetric(nil, &benchMetric)
	b.ReportAllocs()
	for b.Loop() {
		var m Metric
		if err := DecodeMetric(data, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateMetric(b *testing.B) {
	m := benchMetric
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Validate(RecordLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateMetricAfter validates the metric after one like it, as in a stream: the same
// name, source and tag keys, another value for its last tag, in other memory (as a decoder
// gives).
func BenchmarkValidateMetricAfter(b *testing.B) {
	prev := benchMetric
	m := benchMetric
	m.Tags = slices.Clone(benchMetric.Tags)
	m.Name, m.Source = strings.Clone(m.Name), strings.Clone(m.Source)
	m.Tags[len(m.Tags)-1].Value += "1"
	b.ReportAllocs()
	for b.Loop() {
		if err := m.ValidateAfter(&prev, RecordLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendAlert(b *testing.B) {
	a := sampleAlert
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendAlert(buf[:0], &a)
	}
}

func BenchmarkDecodeAlert(b *testing.B) {
	data, _ := AppendAlert(nil, &sampleAlert)
	var a Alert
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeAlert(data, &a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendTermMetric and BenchmarkUnmarshalMetric time the general codec on the same record.
func BenchmarkAppendTermMetric(b *testing.B) {
	var v any = metricTerm(&benchMetric)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendTerm(buf[:0], v)
	}
}

func BenchmarkUnmarshalMetric(b *testing.B) {
	data, _ := AppendMetric(nil, &benchMetric)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}

// beamTimes are pharos_etf_bench's results, in ns per record.
type beamTimes struct {
	release                 string
	termToBinary, binToTerm float64 // binary_to_term(B, [safe])
	binToTermUnsafe         float64
	metricBytes             []byte
}

var (
	beamOnce   sync.Once
	beamResult beamTimes
	beamErr    error
)

// runBEAMBench compiles test/erlang/bench/pharos_etf_bench.erl with the release PHAROS_OTP names and
// runs it.
func runBEAMBench(b *testing.B) beamTimes {
	b.Helper()
	rel := erltest.FromEnv(b)
	beamOnce.Do(func() { beamResult, beamErr = execBEAMBench(b, rel) })
	if beamErr != nil {
		b.Fatal(beamErr)
	}
	return beamResult
}

func execBEAMBench(b *testing.B, rel erltest.Release) (beamTimes, error) {
	root, err := erltest.RepoRoot()
	if err != nil {
		return beamTimes{}, err
	}
	dir := b.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	compile := exec.CommandContext(ctx, rel.Erlc, "-o", dir, filepath.Join(root, "test", "erlang", "bench", "pharos_etf_bench.erl"))
	compile.Env = rel.Environ(nil)
	if out, err := compile.CombinedOutput(); err != nil {
		return beamTimes{}, &exec.Error{Name: "erlc: " + string(out), Err: err}
	}
	run := exec.CommandContext(ctx, rel.Erl, "-noshell", "-pa", dir, "-eval", "pharos_etf_bench:main(), halt().")
	run.Env = rel.Environ(nil)
	out, err := run.Output()
	if err != nil {
		return beamTimes{}, err
	}
	var r beamTimes
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
		case "term_to_binary_ns":
			r.termToBinary = x
		case "binary_to_term_safe_ns":
			r.binToTerm = x
		case "binary_to_term_ns":
			r.binToTermUnsafe = x
		case "metric_hex":
			r.metricBytes, _ = hex.DecodeString(f[1])
		}
	}
	return r, nil
}

// BenchmarkMetricVsBEAM times the Go record codec and, in the same run, term_to_binary/1 and
// binary_to_term/2 ([safe]) on the same record in a compiled Erlang module, and reports the ratios:
// beam/go is how many times faster Go is. Run it with
//
//	PHAROS_OTP=27 go test ./etf -run '^$' -bench MetricVsBEAM -benchtime 2s
//
// Goals: encode beam/go >= 5 with 0 allocs/op; decode beam/go > 1.
func BenchmarkMetricVsBEAM(b *testing.B) {
	beam := runBEAMBench(b)
	var fromBEAM Metric
	if err := DecodeMetric(beam.metricBytes, &fromBEAM); err != nil || !metricsEqual(&fromBEAM, &benchMetric) {
		b.Fatalf("the Erlang bench module times another record (%+v, %v)", fromBEAM, err)
	}
	b.Logf("OTP %s: term_to_binary %.0f ns, binary_to_term([safe]) %.0f ns, binary_to_term/1 %.0f ns per record",
		beam.release, beam.termToBinary, beam.binToTerm, beam.binToTermUnsafe)
	b.Run("encode", func(b *testing.B) {
		m := benchMetric
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = AppendMetric(buf[:0], &m)
		}
		goNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(beam.termToBinary, "beam-ns/op")
		b.ReportMetric(beam.termToBinary/goNs, "beam/go")
	})
	b.Run("decode", func(b *testing.B) {
		data := beam.metricBytes // Erlang's own bytes: ATOM_EXT on OTP 25, UTF-8 atoms later
		var m Metric
		b.ReportAllocs()
		for b.Loop() {
			_ = DecodeMetric(data, &m)
		}
		goNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(beam.binToTerm, "beam-ns/op")
		b.ReportMetric(beam.binToTerm/goNs, "beam/go")
	})
}
