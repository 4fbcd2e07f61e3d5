package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/pharos-node/pharos-node/etf"
)

// encodeMetricJSON writes m in the JSON form of the HTTP API, tags as pairs.
func encodeMetricJSON(m etf.Metric) string {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	var b strings.Builder
	b.WriteString(`{"name":` + q(m.Name) + `,"kind":` + q(m.Kind.String()))
	b.WriteString(`,"value":` + strconv.FormatFloat(m.Value, 'g', -1, 64) + `,"tags":[`)
	for i, t := range m.Tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("[" + q(t.Key) + "," + q(t.Value) + "]")
	}
	b.WriteString(`],"timestamp_ms":` + strconv.FormatInt(m.TimestampMs, 10) + `,"source":` + q(m.Source) + `}`)
	return b.String()
}

// encodeAlertJSON writes a in the JSON form of the HTTP API, tags as an object.
func encodeAlertJSON(a etf.Alert) string {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	var b strings.Builder
	b.WriteString(`{"name":` + q(a.Name) + `,"severity":` + q(a.Severity.String()) + `,"message":` + q(a.Message) + `,"tags":{`)
	for i, t := range a.Tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(q(t.Key) + ":" + q(t.Value))
	}
	b.WriteString(`},"timestamp_ms":` + strconv.FormatInt(a.TimestampMs, 10) + `,"source":` + q(a.Source) + `}`)
	return b.String()
}

// FuzzDecodeRecords: whatever the body, splitting and decoding never panic, errors are typed, and
// every record that decodes re-encodes to JSON that decodes to the same record (tag order kept).
func FuzzDecodeRecords(f *testing.F) {
	for _, seed := range []string{
		`{"name":"cpu","kind":"gauge","value":0.5,"tags":{"z":"1","a":"2"},"timestamp_ms":123,"source":"s"}`,
		`[{"name":"reqs","kind":"counter","value":-3,"tags":[["b","x"],["a","y"]]},{"name":""}]`,
		`[{"name":"disk","severity":"critical","message":"m","tags":{"h":"a"}}, 1, null, "x"]`,
		`{"name":"n","kind":"histogram","value":1e400}`,
		`{"name":"\ud800","kind":"gauge","value":1,"tags":{"a":"1","a":"2"}}`,
		`[]`, `[{}]`, `{"tags":[[]]}`, `{"timestamp_ms":1.5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := splitBody(body, 50)
		if err != nil {
			if !errors.Is(err, ErrMalformedJSON) && !errors.Is(err, ErrTooManyRecords) {
				t.Fatalf("untyped split error %v", err)
			}
			return
		}
		for _, raw := range raws {
			m, err := decodeMetric(raw, testDefaults)
			if err != nil {
				var ferr *FieldError
				if !errors.As(err, &ferr) {
					t.Fatalf("untyped metric error %v", err)
				}
			} else {
				if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
					t.Fatalf("non-finite value decoded from %s", raw)
				}
				again, err := decodeMetric([]byte(encodeMetricJSON(m)), recordDefaults{})
				if err != nil {
					t.Fatalf("%s decoded as %+v, re-encoded as %s, fails: %v", raw, m, encodeMetricJSON(m), err)
				}
				if !metricsEqual(m, again) {
					t.Fatalf("%s: %+v, then %+v", raw, m, again)
				}
			}
			a, err := decodeAlert(raw, testDefaults)
			if err != nil {
				var ferr *FieldError
				if !errors.As(err, &ferr) {
					t.Fatalf("untyped alert error %v", err)
				}
				continue
			}
			again, err := decodeAlert([]byte(encodeAlertJSON(a)), recordDefaults{})
			if err != nil {
				t.Fatalf("%s decoded as %+v, re-encoded as %s, fails: %v", raw, a, encodeAlertJSON(a), err)
			}
			if !alertsEqual(a, again) {
				t.Fatalf("%s: %+v, then %+v", raw, a, again)
			}
		}
	})
}

func alertsEqual(a, b etf.Alert) bool {
	if a.Name != b.Name || a.Severity != b.Severity || a.Message != b.Message || a.TimestampMs != b.TimestampMs ||
		a.Source != b.Source || len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	return true
}

// FuzzDecodeMatchesLegacy: the jsontext decoder splits and decodes every body as encoding/json's
// token decoder did (json_legacy_test.go): the same bodies refused as a whole (the same sentinel;
// the syntax error's own wording differs), the same records, and for each record the same result
// or the same error message.
func FuzzDecodeMatchesLegacy(f *testing.F) {
	for _, seed := range []string{
		`{"name":"cpu","kind":"gauge","value":0.5,"tags":{"z":"1","a":"2"},"timestamp_ms":123,"source":"s"}`,
		`[{"name":"reqs","kind":"counter","value":-3,"tags":[["b","x"],["a","y"]]},{"name":""}]`,
		`[{"name":"disk","severity":"critical","message":"m","tags":{"h":"a"}}, 1, null, "x"]`,
		`{"name":"n","kind":"histogram","value":1e400}`, `{"n\u0061me":"a\"b","kind":"gauge","value":1}`,
		`{"name":"\ud800","kind":"gauge","value":1,"tags":{"a":"1","a":"2"}}`, "[{\"name\":\"\xff\"}, {}]",
		`[]`, `[{}]`, `{"tags":[[]]}`, `{"timestamp_ms":1.5}`, `[{"name":"a","name":"b"}]`, `[{"tags":{"a":null}}]`,
		`[{"tags":[["a","b","c"]]},{"tags":[["a"]]},{"tags":["a"]},{"tags":"x"},{"value":"1"},{"kind":5}]`,
		`[{"name":"a","x":[1,{"y":2}]},{"name":"b","kind":"gauge","value":1}] `, `[{"name":"a","x":[1,}]`, `[1,2`, `{"a":1}{"b":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkEachRecordMatchesLegacy(t, body)
		raws, err := splitBody(body, 50)
		legacy, lerr := legacySplitBody(body, 50)
		if (err == nil) != (lerr == nil) {
			t.Fatalf("split: %v, legacy %v", err, lerr)
		}
		if err != nil {
			for _, sentinel := range []error{ErrMalformedJSON, ErrTooManyRecords} {
				if errors.Is(err, sentinel) != errors.Is(lerr, sentinel) {
					t.Fatalf("split: %v, legacy %v", err, lerr)
				}
			}
			return
		}
		if len(raws) != len(legacy) {
			t.Fatalf("split: %d records, legacy %d", len(raws), len(legacy))
		}
		for i, raw := range raws {
			if !bytes.Equal(raw, legacy[i]) {
				t.Fatalf("record %d: %q, legacy %q", i, raw, legacy[i])
			}
			m, err := decodeMetric(raw, testDefaults)
			lm, lerr := legacyDecodeMetric(raw, testDefaults)
			sameResult(t, raw, m, err, lm, lerr, metricsEqual)
			a, err := decodeAlert(raw, testDefaults)
			la, lerr := legacyDecodeAlert(raw, testDefaults)
			sameResult(t, raw, a, err, la, lerr, alertsEqual)
		}
	})
}

func sameResult[T any](t *testing.T, raw []byte, got T, err error, want T, wantErr error, equal func(a, b T) bool) {
	t.Helper()
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("%s: error %v, legacy %v", raw, err, wantErr)
	case err != nil && err.Error() != wantErr.Error():
		t.Fatalf("%s: error %q, legacy %q", raw, err, wantErr)
	case err == nil && !equal(got, want):
		t.Fatalf("%s: %+v, legacy %+v", raw, got, want)
	}
}

// checkEachRecordMatchesLegacy: the handler's decoding (eachRecord, one pass for a body of valid
// UTF-8) refuses the same bodies as the legacy split, and decodes each record as the legacy
// decoder does, metrics and alerts.
func checkEachRecordMatchesLegacy(t *testing.T, body []byte) {
	t.Helper()
	legacy, lerr := legacySplitBody(body, 50)
	for _, alerts := range []bool{false, true} {
		type result struct {
			m   etf.Metric
			a   etf.Alert
			err error
		}
		var got []result
		_, err := newJSONReader().eachRecord(body, string(body), 50, alerts, testDefaults, nil, func(i int, rec *record, err error) {
			if i != len(got) {
				t.Fatalf("record %d after %d", i, len(got))
			}
			got = append(got, result{rec.metric, rec.alert, err})
		})
		if (err == nil) != (lerr == nil) {
			t.Fatalf("eachRecord: %v, legacy split %v", err, lerr)
		}
		if err != nil {
			for _, sentinel := range []error{ErrMalformedJSON, ErrTooManyRecords} {
				if errors.Is(err, sentinel) != errors.Is(lerr, sentinel) {
					t.Fatalf("eachRecord: %v, legacy split %v", err, lerr)
				}
			}
			continue
		}
		if len(got) != len(legacy) {
			t.Fatalf("eachRecord: %d records, legacy %d", len(got), len(legacy))
		}
		for i, raw := range legacy {
			if alerts {
				la, lerr := legacyDecodeAlert(raw, testDefaults)
				sameResult(t, raw, got[i].a, got[i].err, la, lerr, alertsEqual)
			} else {
				lm, lerr := legacyDecodeMetric(raw, testDefaults)
				sameResult(t, raw, got[i].m, got[i].err, lm, lerr, metricsEqual)
			}
		}
	}
}
