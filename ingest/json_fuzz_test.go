package ingest

import (
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
