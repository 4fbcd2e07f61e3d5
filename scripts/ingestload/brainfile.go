package main

import (
	"bufio"
	"encoding/json"
	"os"
	"sort"
)

// brainSecond is one line of pharos_latency_brain's file: what reached the Brain in one second.
type brainSecond struct {
	Sec     int64      `json:"sec"`
	Records int64      `json:"records"`
	N       int64      `json:"n"`
	Hist    [][2]int64 `json:"hist"` // latency in µs (3 significant digits), count
}

// readBrainFile reads the seconds from .. to-1 (Unix seconds) of the latency Brain's file.
func readBrainFile(path string, from, to int64) ([]brainSecond, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []brainSecond
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var s brainSecond
		if json.Unmarshal(sc.Bytes(), &s) != nil || s.Sec < from || s.Sec >= to {
			continue
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// brainSummary merges seconds: records, and latency quantiles in milliseconds.
type brainSummary struct {
	Records               int64
	Seconds               int
	N                     int64
	P50, P99, P999, MaxMs float64
}

func summarize(secs []brainSecond) brainSummary {
	var s brainSummary
	hist := map[int64]int64{}
	for _, sec := range secs {
		s.Records += sec.Records
		s.N += sec.N
		s.Seconds++
		for _, h := range sec.Hist {
			hist[h[0]] += h[1]
		}
	}
	keys := make([]int64, 0, len(hist))
	for k := range hist {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	q := func(p float64) float64 {
		if s.N == 0 {
			return 0
		}
		want := int64(p*float64(s.N-1)) + 1
		var seen int64
		for _, k := range keys {
			seen += hist[k]
			if seen >= want {
				return float64(k) / 1000
			}
		}
		return float64(keys[len(keys)-1]) / 1000
	}
	s.P50, s.P99, s.P999, s.MaxMs = q(0.5), q(0.99), q(0.999), q(1)
	return s
}
