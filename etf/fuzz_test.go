package etf

import (
	"errors"
	"io"
	"testing"
)

// Fuzz targets. `go test` runs each on its seeds (testdata/fuzz/<Target>, plus the f.Add seeds below):
// FuzzDecode's seeds are term_to_binary output of OTP 25, 27 and 29 (interop_test.go writes them), and
// inputs that once failed are kept there as regression tests. To fuzz:
//
//	go test ./etf -run '^$' -fuzz '^FuzzDecode$' -fuzztime 5m
//	go test ./etf -run '^$' -fuzz '^FuzzDecodeTerm$' -fuzztime 5m
//	go test ./etf -run '^$' -fuzz '^FuzzDecodeRecord$' -fuzztime 5m

// addGoSeeds adds Go's encodings of the test cases.
func addGoSeeds(f *testing.F, versionByte bool) {
	add := func(v any) {
		data, err := Marshal(v)
		if err != nil || len(data) > 4096 {
			return
		}
		if !versionByte {
			data = data[1:]
		}
		f.Add(data)
	}
	for _, c := range termCases {
		if c.want != nil {
			add(c.want)
		}
	}
	for _, c := range goCases {
		add(c.value)
	}
}

// checkDecodeError: a failed decode reports a *DecodeError (or io.EOF for empty input).
func checkDecodeError(t *testing.T, data []byte, err error) {
	if len(data) == 0 {
		if err != io.EOF {
			t.Fatalf("empty input: %v", err)
		}
		return
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
}

func FuzzDecode(f *testing.F) {
	addGoSeeds(f, true)
	small := NewDecoder(Limits{MaxDepth: 8, MaxBigIntBytes: 16, MaxDecompressedSize: 4096, MaxInputSize: 1 << 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if err != nil {
			checkDecodeError(t, data, err)
		} else {
			checkRoundTrip(t, "fuzz", v)
		}
		// Tighter limits may refuse more, never accept something else.
		v2, err2 := small.Unmarshal(data)
		if err2 == nil && (err != nil || !strictEqual(v, v2)) {
			t.Fatalf("small limits accepted what the default refused (%v), or decoded differently", err)
		}
		if err2 != nil {
			checkDecodeError(t, data, err2)
		}
	})
}

func FuzzDecodeTerm(f *testing.F) {
	addGoSeeds(f, false)
	f.Add([]byte{104, 2, 82, 0, 82, 3})
	f.Add([]byte{88, 82, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	atoms := AtomCache{"nonode@nohost", "pharos@host", "", "ok"}
	d := NewDecoder(Limits{MaxDepth: 64})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := d.DecodeTerm(data, atoms)
		if err != nil {
			checkDecodeError(t, data, err)
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("used %d of %d bytes", n, len(data))
		}
		// The term re-encodes (atom cache references resolved) and decodes to itself.
		enc, err := AppendTerm(nil, v)
		if err != nil {
			t.Fatalf("re-encoding %s: %v", show(v), err)
		}
		v2, m, err := d.DecodeTerm(enc, nil)
		if err != nil || m != len(enc) || !strictEqual(v, v2) {
			t.Fatalf("re-decoding: %s, %d of %d, %v", show(v2), m, len(enc), err)
		}
	})
}

// FuzzDecodeRecord checks the record decoders' fast path against the general decoder, and that what
// they decode re-encodes to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range recordCases {
		if r.metric != nil {
			data, _ := AppendMetric(nil, r.metric)
			f.Add(data)
		} else {
			data, _ := AppendAlert(nil, r.alert)
			f.Add(data)
		}
	}
	// Erlang's encodings of the records, from FuzzDecode's corpus.
	for name, data := range readCorpus(f) {
		if _, ok := recordByName(name); ok {
			f.Add(data)
		}
	}
	f.Add([]byte{131, 104, 7, 100, 0, 6, 'm', 'e', 't', 'r', 'i', 'c', 109, 0, 0, 0, 1, 'n', 100, 0, 5, 'g', 'a', 'u', 'g', 'e',
		99, '1', '.', '5', 'e', '+', '0', '0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		106, 97, 1, 109, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow, again Metric
		fastOK := decodeMetricFast(data, &fast)
		v, uErr := Unmarshal(data)
		slowErr := uErr
		if uErr == nil {
			slowErr = metricFromTerm(v, &slow)
		}
		if fastOK && (slowErr != nil || !metricsEqual(&fast, &slow)) {
			t.Fatalf("fast path accepted %+v, general decoder says %+v, %v", fast, slow, slowErr)
		}
		if err := DecodeMetric(data, &again); (err == nil) != (slowErr == nil) {
			t.Fatalf("DecodeMetric: %v, general decoder: %v", err, slowErr)
		} else if err == nil {
			enc, err := AppendMetric(nil, &again)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", again, err)
			}
			var back Metric
			if err := DecodeMetric(enc, &back); err != nil || !metricsEqual(&back, &again) {
				t.Fatalf("re-decoding: %+v, %v", back, err)
			}
		}

		var afast, aslow, aagain Alert
		afastOK := decodeAlertFast(data, &afast)
		aslowErr := uErr
		if uErr == nil {
			aslowErr = alertFromTerm(v, &aslow)
		}
		if afastOK && (aslowErr != nil || !alertsEqual(&afast, &aslow)) {
			t.Fatalf("fast path accepted %+v, general decoder says %+v, %v", afast, aslow, aslowErr)
		}
		if err := DecodeAlert(data, &aagain); (err == nil) != (aslowErr == nil) {
			t.Fatalf("DecodeAlert: %v, general decoder: %v", err, aslowErr)
		} else if err == nil {
			enc, err := AppendAlert(nil, &aagain)
			if err != nil {
				t.Fatalf("re-encoding %+v: %v", aagain, err)
			}
			var back Alert
			if err := DecodeAlert(enc, &back); err != nil || !alertsEqual(&back, &aagain) {
				t.Fatalf("re-decoding: %+v, %v", back, err)
			}
		}
	})
}
