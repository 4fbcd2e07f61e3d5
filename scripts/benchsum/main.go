// Command benchsum prints the figures that matter from `go test -bench` output (scripts/bench.sh,
// `make bench`) as one short table. It reads the raw output on stdin or from the files named on
// the command line:
//
//	go run ./scripts/benchsum _build/bench/bench-2026-01-02T030405Z.txt
//
// Each row is one figure; where the benchmark ran the BEAM on the same work in the same run, the
// row gives both and how many times better Go is (">1x": Go faster or cheaper). A figure whose
// benchmark did not run is left out. Benchmarks of cmd/pharos-node other than SendVersusBEAM and
// AckedThroughput are listed with all their custom metrics.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// result is one benchmark line: unit -> value.
type result map[string]float64

// results maps "pkg-suffix/BenchmarkName" (GOMAXPROCS suffix removed) to its last result.
type results map[string]result

var procsSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader, into results, order *[]string) error {
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		res := result{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				res = nil
				break
			}
			res[f[i+1]] = v
		}
		if res == nil {
			continue
		}
		key := pkg + "/" + procsSuffix.ReplaceAllString(f[0], "")
		if _, seen := into[key]; !seen {
			*order = append(*order, key)
		}
		into[key] = res
	}
	return sc.Err()
}

// num formats a figure with three significant digits and a k/M suffix.
func num(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

type table struct {
	rows    [][4]string
	res     results
	pkgBase string
}

// get returns a metric of pkg/bench; ok is false when the benchmark or the metric is missing.
func (t *table) get(pkg, bench, unit string) (float64, bool) {
	r, ok := t.res[t.pkgBase+pkg+"/"+bench]
	if !ok {
		return 0, false
	}
	v, ok := r[unit]
	return v, ok
}

func (t *table) add(area, figure, value, ratio string) {
	t.rows = append(t.rows, [4]string{area, figure, value, ratio})
}

// goOnly adds a row of Go figures, each "value unit", if all of them are present.
func (t *table) goOnly(area, figure, pkg, bench string, units ...string) {
	var parts []string
	for _, u := range units {
		v, ok := t.get(pkg, bench, u)
		if !ok {
			return
		}
		parts = append(parts, num(v)+" "+u)
	}
	t.add(area, figure, strings.Join(parts, ", "), "")
}

// versus adds a row comparing a Go figure with the BEAM's; higherBetter says which way is better.
func (t *table) versus(area, figure, pkg, bench, goUnit, beamUnit, shown string, higherBetter bool) {
	g, ok1 := t.get(pkg, bench, goUnit)
	b, ok2 := t.get(pkg, bench, beamUnit)
	if !ok1 || !ok2 || g == 0 || b == 0 {
		return
	}
	ratio := b / g
	if higherBetter {
		ratio = g / b
	}
	t.add(area, figure, fmt.Sprintf("Go %s, BEAM %s %s", num(g), num(b), shown), strconv.FormatFloat(ratio, 'f', 2, 64)+"x")
}

func main() {
	res, order := results{}, []string{}
	if len(os.Args) == 1 {
		if err := parse(os.Stdin, res, &order); err != nil {
			fmt.Fprintln(os.Stderr, "benchsum:", err)
			os.Exit(1)
		}
	}
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchsum:", err)
			os.Exit(1)
		}
		err = parse(f, res, &order)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchsum:", err)
			os.Exit(1)
		}
	}
	t := &table{res: res, pkgBase: "github.com/pharos-node/pharos-node/"}

	t.goOnly("buffer", "ring push, full ring (each push evicts)", "buffer", "BenchmarkPush", "ns/op", "Mpush/s")
	t.goOnly("buffer", "ring push, GOMAXPROCS producers", "buffer", "BenchmarkPushParallel", "ns/op", "Mpush/s")
	t.goOnly("buffer", "ring push beside a draining consumer", "buffer", "BenchmarkPushDrain", "ns/op", "Mpush/s")
	t.goOnly("buffer", "push + drain in batches of 512", "buffer", "BenchmarkDrain", "ns/record")
	t.goOnly("buffer", "heap per buffered 100-byte record", "buffer", "BenchmarkRAMPerRecord", "B/record")
	for _, p := range []string{"always", "interval-10ms", "interval-100ms", "never"} {
		t.goOnly("spill", "append 100 B, sync="+p, "spill", "BenchmarkAppend/"+p, "records/s")
	}
	t.goOnly("spill", "append 100 B, sync=always, 32 goroutines/core", "spill", "BenchmarkAppendParallel", "records/s")
	t.goOnly("spill", "replay 1M records, open log", "spill", "BenchmarkReplay/read", "records/s")
	t.goOnly("spill", "replay 1M records after a restart (Open validates)", "spill", "BenchmarkReplay/open+read", "records/s")
	t.versus("etf", "encode one metric", "etf", "BenchmarkMetricVsBEAM/encode", "ns/op", "beam-ns/op", "ns (term_to_binary)", false)
	t.versus("etf", "decode one metric", "etf", "BenchmarkMetricVsBEAM/decode", "ns/op", "beam-ns/op", "ns (binary_to_term [safe])", false)
	for _, n := range []string{"1", "100"} {
		t.versus("ingest", "JSON body of "+n+": decode, validate, encode, per record", "ingest", "BenchmarkJSONVersusBEAM/records="+n,
			"cpu-ns/record", "beam-cpu-ns/record", "CPU ns (OTP 27 json:decode, term_to_binary)", false)
		t.goOnly("ingest", "HTTP handler, requests of "+n+", per record", "ingest", "BenchmarkHTTPJSON/records="+n, "cpu-ns/record", "allocs/op")
	}
	t.goOnly("ingest", "StatsD, packets of 20 lines, per line", "ingest", "BenchmarkStatsD/lines=20", "cpu-ns/record", "allocs/op")
	t.goOnly("ingest", "scrape of node_exporter (505 samples), per sample", "ingest", "BenchmarkScrape", "cpu-ns/record")
	for _, c := range []struct{ sub, label string }{{"brain", "to the Brain"}, {"null-sink", "to a null sink"}} {
		bench := "BenchmarkSendVersusBEAM/" + c.sub
		if c.sub == "brain" {
			t.versus("send", "payload "+c.label+": processed by it", "cmd/pharos-node", bench, "go-rec/s", "beam-rec/s", "rec/s", true)
		}
		t.versus("send", "payload "+c.label+": written", "cmd/pharos-node", bench, "go-sent/s", "beam-sent/s", "rec/s", true)
		t.versus("send", "payload "+c.label+": sender CPU", "cmd/pharos-node", bench, "go-cpu-s/M", "beam-cpu-s/M", "s per million", false)
	}
	ack := "BenchmarkAckedThroughput"
	if a, ok := t.get("cmd/pharos-node", ack, "acked_rec/s"); ok {
		var parts []string
		for _, c := range []struct{ unit, label string }{
			{"acked_rec/s", "acked (spill)"}, {"acked_ram_rec/s", "acked (RAM)"},
			{"payload_rec/s", "payload"}, {"beam_rec/s", "BEAM sender"},
			{"beam_acked_rec/s", "BEAM sender, acked batches"},
		} {
			if v, ok := t.get("cmd/pharos-node", ack, c.unit); ok {
				parts = append(parts, c.label+" "+num(v))
			}
		}
		ratio := ""
		if beam, ok := t.get("cmd/pharos-node", ack, "beam_rec/s"); ok && beam > 0 {
			ratio = strconv.FormatFloat(a/beam, 'f', 2, 64) + "x (acked)"
		}
		t.add("send", "processed by the Brain, rec/s", strings.Join(parts, ", "), ratio)
		parts = parts[:0]
		for _, c := range []struct{ unit, label string }{
			{"acked", "acked (spill)"}, {"acked_ram", "acked (RAM)"}, {"payload", "payload"}, {"beam", "BEAM sender"},
			{"beam_acked", "BEAM sender, acked batches"},
		} {
			sender, ok1 := t.get("cmd/pharos-node", ack, c.unit+"_sender_cpu_us/rec")
			brain, ok2 := t.get("cmd/pharos-node", ack, c.unit+"_brain_cpu_us/rec")
			if ok1 && ok2 {
				parts = append(parts, fmt.Sprintf("%s %.2f + %.2f", c.label, sender, brain))
			}
		}
		if len(parts) > 0 {
			t.add("send", "CPU per record, sender + Brain node, µs", strings.Join(parts, ", "), "")
		}
	}

	for _, c := range []struct{ sub, label string }{
		{"otlp-protobuf", "OTLP/HTTP receiver, protobuf"}, {"otlp-json", "OTLP/HTTP receiver, OTLP/JSON"},
		{"pharos-json", "Pharos JSON endpoint"},
	} {
		t.goOnly("ingest", c.label+", 1000 points per request", "ingest/otlp", "BenchmarkIngest/"+c.sub, "points/s", "cpu-ns/point")
	}
	if j, ok := t.get("fsm", "BenchmarkFleetReconnectStorm", "peak/100ms-jitter"); ok {
		if n, ok := t.get("fsm", "BenchmarkFleetReconnectStorm", "peak/100ms-nojitter"); ok {
			t.add("fsm", "10,000 nodes reconnect: peak attempts per 100 ms",
				fmt.Sprintf("full jitter %s, no jitter %s (%.1fx lower)", num(j), num(n), n/j), "")
		}
	}
	t.goOnly("fsm", "acked manager, batch 1000, one record per event", "fsm", "BenchmarkAckedManager/take=1/batch=1000", "records/s")
	t.goOnly("fsm", "acked manager, batch 1000, 256 records per event", "fsm", "BenchmarkAckedManager/take=256/batch=1000", "records/s")
	t.goOnly("fsm", "unacked manager (no-op transport)", "fsm", "BenchmarkUnackedManager", "records/s")

	// Other cmd/pharos-node benchmarks (acked vs payload vs the BEAM, ...): every custom metric.
	cmdPrefix := t.pkgBase + "cmd/pharos-node/"
	for _, key := range order {
		name, ok := strings.CutPrefix(key, cmdPrefix)
		if !ok || strings.HasPrefix(name, "BenchmarkSendVersusBEAM") || name == ack {
			continue
		}
		var units []string
		for u := range res[key] {
			switch u {
			case "ns/op", "B/op", "allocs/op", "MB/s":
			default:
				units = append(units, u)
			}
		}
		sort.Strings(units)
		var parts []string
		for _, u := range units {
			parts = append(parts, num(res[key][u])+" "+u)
		}
		if len(parts) > 0 {
			t.add("send", strings.TrimPrefix(name, "Benchmark"), strings.Join(parts, ", "), "")
		}
	}

	if len(t.rows) == 0 {
		fmt.Fprintln(os.Stderr, "benchsum: no benchmark results found")
		os.Exit(1)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "area\tfigure\tresult\tGo vs BEAM")
	for _, r := range t.rows {
		fmt.Fprintln(w, strings.Join(r[:], "\t"))
	}
	w.Flush()
}
