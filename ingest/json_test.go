package ingest

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

var testDefaults = recordDefaults{timestampMs: fixedMs, source: "default-src"}

func TestSplitBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		max     int
		want    []string
		wantErr error
	}{
		{name: "object", body: ` {"a":1} `, max: 10, want: []string{`{"a":1}`}},
		{name: "array", body: `[{"a":1}, 2, "x", null]`, max: 10, want: []string{`{"a":1}`, `2`, `"x"`, `null`}},
		{name: "empty array", body: `[]`, max: 10, want: nil},
		{name: "exactly max", body: `[1,2,3]`, max: 3, want: []string{`1`, `2`, `3`}},
		{name: "over max", body: `[1,2,3,4]`, max: 3, wantErr: ErrTooManyRecords},
		{name: "empty", body: ``, max: 10, wantErr: ErrMalformedJSON},
		{name: "blank", body: " \n", max: 10, wantErr: ErrMalformedJSON},
		{name: "scalar", body: `42`, max: 10, wantErr: ErrMalformedJSON},
		{name: "unterminated array", body: `[{"a":1}`, max: 10, wantErr: ErrMalformedJSON},
		{name: "bad element", body: `[{"a":1}, {"b":]`, max: 10, wantErr: ErrMalformedJSON},
		{name: "two objects", body: `{"a":1}{"b":2}`, max: 10, wantErr: ErrMalformedJSON},
		{name: "trailing garbage", body: `[1] x`, max: 10, wantErr: ErrMalformedJSON},
		{name: "unterminated object", body: `{"a":1`, max: 10, wantErr: ErrMalformedJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitBody([]byte(tt.body), tt.max)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			var gotText []string
			for _, r := range got {
				gotText = append(gotText, string(r))
			}
			assert.Equal(t, tt.want, gotText)
		})
	}
}

func TestDecodeMetric(t *testing.T) {
	tests := []struct {
		name      string
		json      string
		want      etf.Metric
		wantErr   error
		wantField string
	}{
		{
			name: "full, tags as object keep their order",
			json: `{"name":"cpu","kind":"gauge","value":0.5,"tags":{"z":"1","a":"2","m":"3"},"timestamp_ms":123,"source":"s"}`,
			want: etf.Metric{Name: "cpu", Kind: etf.Gauge, Value: 0.5, Tags: []etf.Tag{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "m", Value: "3"}}, TimestampMs: 123, Source: "s"},
		},
		{
			name: "tags as pairs, defaults",
			json: `{"kind":"counter","value":-3,"name":"reqs","tags":[["b","x"],["a","y"]]}`,
			want: etf.Metric{Name: "reqs", Kind: etf.Counter, Value: -3, Tags: []etf.Tag{{Key: "b", Value: "x"}, {Key: "a", Value: "y"}}, TimestampMs: fixedMs, Source: "default-src"},
		},
		{
			name: "histogram, null optionals take defaults",
			json: `{"name":"lat","kind":"histogram","value":1e3,"tags":null,"timestamp_ms":null,"source":null}`,
			want: etf.Metric{Name: "lat", Kind: etf.Histogram, Value: 1000, TimestampMs: fixedMs, Source: "default-src"},
		},
		{
			name: "duplicate tag keys pass decoding (Validate refuses them)",
			json: `{"name":"n","kind":"gauge","value":1,"tags":{"a":"1","a":"2"}}`,
			want: etf.Metric{Name: "n", Kind: etf.Gauge, Value: 1, Tags: []etf.Tag{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}, TimestampMs: fixedMs, Source: "default-src"},
		},
		{
			name: "empty source kept",
			json: `{"name":"n","kind":"gauge","value":1,"source":""}`,
			want: etf.Metric{Name: "n", Kind: etf.Gauge, Value: 1, TimestampMs: fixedMs},
		},
		{
			name: "negative timestamp", json: `{"name":"n","kind":"gauge","value":1,"timestamp_ms":-5}`,
			want: etf.Metric{Name: "n", Kind: etf.Gauge, Value: 1, TimestampMs: -5, Source: "default-src"},
		},
		{name: "not an object", json: `[1]`, wantErr: ErrNotObject},
		{name: "string", json: `"x"`, wantErr: ErrNotObject},
		{name: "missing name", json: `{"kind":"gauge","value":1}`, wantErr: ErrMissingField, wantField: "name"},
		{name: "null name", json: `{"name":null,"kind":"gauge","value":1}`, wantErr: ErrMissingField, wantField: "name"},
		{name: "missing kind", json: `{"name":"n","value":1}`, wantErr: ErrMissingField, wantField: "kind"},
		{name: "missing value", json: `{"name":"n","kind":"gauge"}`, wantErr: ErrMissingField, wantField: "value"},
		{name: "unknown kind", json: `{"name":"n","kind":"Gauge","value":1}`, wantErr: ErrUnknownEnum, wantField: "kind"},
		{name: "unknown field", json: `{"name":"n","kind":"gauge","value":1,"tag":{}}`, wantErr: ErrUnknownField, wantField: "tag"},
		{name: "severity on a metric", json: `{"name":"n","kind":"gauge","value":1,"severity":"info"}`, wantErr: ErrUnknownField, wantField: "severity"},
		{name: "duplicate field", json: `{"name":"n","name":"m","kind":"gauge","value":1}`, wantErr: ErrDuplicateField, wantField: "name"},
		{name: "value as string", json: `{"name":"n","kind":"gauge","value":"1"}`, wantErr: ErrWrongType, wantField: "value"},
		{name: "value beyond float64", json: `{"name":"n","kind":"gauge","value":1e400}`, wantErr: ErrOutOfRange, wantField: "value"},
		{name: "name as number", json: `{"name":5,"kind":"gauge","value":1}`, wantErr: ErrWrongType, wantField: "name"},
		{name: "name as object", json: `{"name":{},"kind":"gauge","value":1}`, wantErr: ErrWrongType, wantField: "name"},
		{name: "fractional timestamp", json: `{"name":"n","kind":"gauge","value":1,"timestamp_ms":1.5}`, wantErr: ErrOutOfRange, wantField: "timestamp_ms"},
		{name: "timestamp beyond int64", json: `{"name":"n","kind":"gauge","value":1,"timestamp_ms":9223372036854775808}`, wantErr: ErrOutOfRange, wantField: "timestamp_ms"},
		{name: "tags as string", json: `{"name":"n","kind":"gauge","value":1,"tags":"a:b"}`, wantErr: ErrWrongType, wantField: "tags"},
		{name: "tag value number", json: `{"name":"n","kind":"gauge","value":1,"tags":{"port":80}}`, wantErr: ErrWrongType, wantField: "tags[0]"},
		{name: "tag value null", json: `{"name":"n","kind":"gauge","value":1,"tags":{"a":"b","c":null}}`, wantErr: ErrWrongType, wantField: "tags[1]"},
		{name: "tag pair of three", json: `{"name":"n","kind":"gauge","value":1,"tags":[["a","b","c"]]}`, wantErr: ErrWrongType, wantField: "tags[0]"},
		{name: "tag pair of one", json: `{"name":"n","kind":"gauge","value":1,"tags":[["a","b"],["c"]]}`, wantErr: ErrWrongType, wantField: "tags[1]"},
		{name: "tag pair not array", json: `{"name":"n","kind":"gauge","value":1,"tags":["a"]}`, wantErr: ErrWrongType, wantField: "tags[0]"},
		{name: "invalid UTF-8", json: "{\"name\":\"\xff\",\"kind\":\"gauge\",\"value\":1}", wantErr: ErrInvalidUTF8JSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMetric([]byte(tt.json), testDefaults)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var ferr *FieldError
				require.ErrorAs(t, err, &ferr)
				assert.Equal(t, tt.wantField, ferr.Field)
				assert.Equal(t, ReasonDecode, reasonOf(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeAlert(t *testing.T) {
	tests := []struct {
		name      string
		json      string
		want      etf.Alert
		wantErr   error
		wantField string
	}{
		{
			name: "full",
			json: `{"name":"disk","severity":"critical","message":"/var 98%","tags":[["host","a"]],"timestamp_ms":7,"source":"s"}`,
			want: etf.Alert{Name: "disk", Severity: etf.Critical, Message: "/var 98%", Tags: []etf.Tag{{Key: "host", Value: "a"}}, TimestampMs: 7, Source: "s"},
		},
		{
			name: "minimal",
			json: `{"severity":"info","name":"up"}`,
			want: etf.Alert{Name: "up", Severity: etf.Info, TimestampMs: fixedMs, Source: "default-src"},
		},
		{
			name: "warning, null message",
			json: `{"severity":"warning","name":"w","message":null}`,
			want: etf.Alert{Name: "w", Severity: etf.Warning, TimestampMs: fixedMs, Source: "default-src"},
		},
		{name: "missing severity", json: `{"name":"x"}`, wantErr: ErrMissingField, wantField: "severity"},
		{name: "unknown severity", json: `{"name":"x","severity":"error"}`, wantErr: ErrUnknownEnum, wantField: "severity"},
		{name: "kind on an alert", json: `{"name":"x","severity":"info","kind":"gauge"}`, wantErr: ErrUnknownField, wantField: "kind"},
		{name: "message as number", json: `{"name":"x","severity":"info","message":1}`, wantErr: ErrWrongType, wantField: "message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAlert([]byte(tt.json), testDefaults)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var ferr *FieldError
				require.ErrorAs(t, err, &ferr)
				assert.Equal(t, tt.wantField, ferr.Field)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestDecodeMetricPrefixes feeds every prefix of a valid body: each fails cleanly, none panics.
func TestDecodeMetricPrefixes(t *testing.T) {
	body := `[{"name":"cpu","kind":"gauge","value":0.5,"tags":{"z":"1","a":"2"},"timestamp_ms":123,"source":"s"}]`
	for i := range len(body) {
		_, err := splitBody([]byte(body[:i]), 10)
		require.Error(t, err, "prefix %q", body[:i])
		require.True(t, errors.Is(err, ErrMalformedJSON), "prefix %q: %v", body[:i], err)
	}
	obj := body[1 : len(body)-1]
	for i := range len(obj) {
		_, err := decodeMetric([]byte(obj[:i]), testDefaults)
		require.Error(t, err, "prefix %q", obj[:i])
	}
}

func TestParseValueUnderflowIsZero(t *testing.T) {
	v, err := parseValue("1e-400")
	require.NoError(t, err)
	assert.Equal(t, 0.0, v)
	v, err = parseValue("-1.7976931348623157e308")
	require.NoError(t, err)
	assert.Equal(t, -math.MaxFloat64, v)
}

func TestFieldErrorMessage(t *testing.T) {
	_, err := decodeMetric([]byte(`{"name":"n","kind":"gauge","value":"1"}`), testDefaults)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "value: "), err.Error())
}
