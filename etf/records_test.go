package etf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestAppendMetricBytes(t *testing.T) {
	// term_to_binary({metric, <<"a">>, gauge, 1.0, [], 17, <<"s">>}, [{minor_version, 2}]) on OTP 25,
	// which is term_to_binary/1 on OTP 26 and later.
	want := []byte{131, 104, 7, 119, 6, 109, 101, 116, 114, 105, 99, 109, 0, 0, 0, 1, 97, 119, 5, 103, 97, 117, 103,
		101, 70, 63, 240, 0, 0, 0, 0, 0, 0, 106, 97, 17, 109, 0, 0, 0, 1, 115}
	m := Metric{Name: "a", Kind: Gauge, Value: 1, TimestampMs: 17, Source: "s"}
	got, err := AppendMetric(nil, &m)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("AppendMetric = %v, %v\nwant %v", got, err, want)
	}
}

func TestAppendMetricErrors(t *testing.T) {
	prefix := []byte("keep")
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		m := sampleMetric
		m.Value = v
		out, err := AppendMetric(prefix, &m)
		var ve *ValidationError
		if !errors.Is(err, ErrNonFinite) || !errors.As(err, &ve) || ve.Field != "value" {
			t.Fatalf("value %v: %v", v, err)
		}
		if string(out) != "keep" {
			t.Fatalf("value %v: dst changed to %q", v, out)
		}
	}
	m := sampleMetric
	m.Kind = 0
	if _, err := AppendMetric(nil, &m); !errors.Is(err, ErrInvalidKind) {
		t.Fatalf("kind 0: %v", err)
	}
	m.Kind = Histogram + 1
	if _, err := AppendMetric(nil, &m); !errors.Is(err, ErrInvalidKind) {
		t.Fatalf("kind 4: %v", err)
	}
	a := sampleAlert
	a.Severity = 0
	if _, err := AppendAlert(nil, &a); !errors.Is(err, ErrInvalidSeverity) {
		t.Fatalf("severity 0: %v", err)
	}
}

func TestAppendRecordsNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 512)
	m, a := sampleMetric, sampleAlert
	var err error
	if n := testing.AllocsPerRun(1000, func() { buf, err = AppendMetric(buf[:0], &m) }); n != 0 || err != nil {
		t.Fatalf("AppendMetric: %v allocations, %v", n, err)
	}
	if n := testing.AllocsPerRun(1000, func() { buf, err = AppendAlert(buf[:0], &a) }); n != 0 || err != nil {
		t.Fatalf("AppendAlert: %v allocations, %v", n, err)
	}
}

func TestDecodeMetricAllocs(t *testing.T) {
	data, _ := AppendMetric(nil, &sampleMetric)
	var m Metric
	if err := DecodeMetric(data, &m); err != nil {
		t.Fatal(err)
	}
	// Reusing m.Tags: one allocation holds every string of the record.
	if n := testing.AllocsPerRun(1000, func() { _ = DecodeMetric(data, &m) }); n != 1 {
		t.Fatalf("DecodeMetric into a reused Metric: %v allocations, want 1", n)
	}
}

func TestDecodeRecordShapes(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"atom", Atom("metric")},
		{"short_tuple", Tuple{Atom("metric"), []byte("n")}},
		{"wrong_record", Tuple{Atom("alert"), []byte("n"), Atom("gauge"), 1.0, List(nil), int64(1), []byte("s")}},
		{"name_string", Tuple{Atom("metric"), List{int64('n')}, Atom("gauge"), 1.0, List(nil), int64(1), []byte("s")}},
		{"kind_unknown", Tuple{Atom("metric"), []byte("n"), Atom("meter"), 1.0, List(nil), int64(1), []byte("s")}},
		{"kind_binary", Tuple{Atom("metric"), []byte("n"), []byte("gauge"), 1.0, List(nil), int64(1), []byte("s")}},
		{"value_int", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), int64(1), List(nil), int64(1), []byte("s")}},
		{"tags_improper", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, ImproperList{Elems: []any{Tuple{[]byte("k"), []byte("v")}}, Tail: Atom("x")}, int64(1), []byte("s")}},
		{"tag_triple", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, List{Tuple{[]byte("k"), []byte("v"), []byte("w")}}, int64(1), []byte("s")}},
		{"tag_atom_key", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, List{Tuple{Atom("k"), []byte("v")}}, int64(1), []byte("s")}},
		{"ts_big", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, List(nil), bigPow2(64, false), []byte("s")}},
		{"ts_float", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, List(nil), 1.0, []byte("s")}},
		{"source_atom", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, List(nil), int64(1), Atom("s")}},
		{"bad_source_after_tags", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, List{Tuple{[]byte("x"), []byte("y")}}, int64(1), int64(0)}},
		{"bad_second_tag", Tuple{Atom("metric"), []byte("n"), Atom("gauge"), 1.0, List{Tuple{[]byte("x"), []byte("y")}, Tuple{[]byte("x")}}, int64(1), []byte("s")}},
	}
	for _, tt := range tests {
		data, err := Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		m := sampleMetric
		m.Tags = append([]Tag(nil), sampleMetric.Tags...)
		tags := m.Tags
		if err := DecodeMetric(data, &m); !errors.Is(err, ErrNotRecord) {
			t.Errorf("%s: DecodeMetric = %v, want ErrNotRecord", tt.name, err)
		}
		if !metricsEqual(&m, &sampleMetric) || !tagsEqual(tags, sampleMetric.Tags) {
			t.Errorf("%s: the failed decode changed the Metric: %+v", tt.name, m)
		}
	}
	var a Alert
	data, _ := AppendMetric(nil, &sampleMetric)
	if err := DecodeAlert(data, &a); !errors.Is(err, ErrNotRecord) {
		t.Errorf("a metric given to DecodeAlert: %v", err)
	}
	if err := DecodeMetric([]byte{131, 70, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0}, new(Metric)); !errors.Is(err, ErrNonFinite) {
		t.Errorf("decode error passed through: %v", err)
	}
}

func TestDecodeMetricOtherEncodings(t *testing.T) {
	// What OTP 25's term_to_binary(M, [{minor_version, 0}]) writes: ATOM_EXT, FLOAT_EXT.
	data := b(131, 104, 7, 100, u16(6), "metric", 109, u32(1), "n", 100, u16(9), "histogram",
		99, "2.50000000000000000000e+00", 0, 0, 0, 0, 0,
		108, u32(1), 104, 2, 109, u32(1), "k", 109, u32(1), "v", 106,
		98, u32(1000), 109, u32(1), "s")
	var m Metric
	if err := DecodeMetric(data, &m); err != nil {
		t.Fatal(err)
	}
	want := Metric{Name: "n", Kind: Histogram, Value: 2.5, Tags: []Tag{{"k", "v"}}, TimestampMs: 1000, Source: "s"}
	if !metricsEqual(&m, &want) {
		t.Fatalf("got %+v", m)
	}
	checkPrefixes(t, "metric_m0", data, func(b []byte) error { return DecodeMetric(b, &m) })
}

func TestValidate(t *testing.T) {
	ok := sampleMetric
	if err := ok.Validate(RecordLimits{}); err != nil {
		t.Fatalf("sample metric: %v", err)
	}
	manyTags := make([]Tag, 65)
	for i := range manyTags {
		manyTags[i] = Tag{Key: fmt.Sprint("k", i)}
	}
	dupMany := append(append([]Tag(nil), manyTags[:40]...), Tag{Key: "k3"})
	tests := []struct {
		name   string
		change func(*Metric)
		limits RecordLimits
		want   error
		field  string
	}{
		{"empty_name", func(m *Metric) { m.Name = "" }, RecordLimits{}, ErrEmptyName, "name"},
		{"long_name", func(m *Metric) { m.Name = strings.Repeat("n", 256) }, RecordLimits{}, ErrFieldTooLong, "name"},
		{"name_limit", func(m *Metric) { m.Name = "abcd" }, RecordLimits{MaxNameBytes: 3}, ErrFieldTooLong, "name"},
		{"name_utf8", func(m *Metric) { m.Name = "\xc3" }, RecordLimits{}, ErrInvalidUTF8, "name"},
		{"kind", func(m *Metric) { m.Kind = 0 }, RecordLimits{}, ErrInvalidKind, "kind"},
		{"nan", func(m *Metric) { m.Value = math.NaN() }, RecordLimits{}, ErrNonFinite, "value"},
		{"inf", func(m *Metric) { m.Value = math.Inf(-1) }, RecordLimits{}, ErrNonFinite, "value"},
		{"dup_tag", func(m *Metric) { m.Tags = []Tag{{"a", "1"}, {"b", "2"}, {"a", "3"}} }, RecordLimits{}, ErrDuplicateTag, "tags[2].key"},
		{"dup_tag_many", func(m *Metric) { m.Tags = dupMany }, RecordLimits{}, ErrDuplicateTag, "tags[40].key"},
		{"too_many_tags", func(m *Metric) { m.Tags = manyTags }, RecordLimits{}, ErrTooManyTags, "tags"},
		{"empty_tag_key", func(m *Metric) { m.Tags = []Tag{{"", "v"}} }, RecordLimits{}, ErrEmptyTagKey, "tags[0].key"},
		{"tag_key_utf8", func(m *Metric) { m.Tags = []Tag{{"\xff", "v"}} }, RecordLimits{}, ErrInvalidUTF8, "tags[0].key"},
		{"tag_value_utf8", func(m *Metric) { m.Tags = []Tag{{"k", "\xff"}} }, RecordLimits{}, ErrInvalidUTF8, "tags[0].value"},
		{"tag_value_long", func(m *Metric) { m.Tags = []Tag{{"k", strings.Repeat("v", 1025)}} }, RecordLimits{}, ErrFieldTooLong, "tags[0].value"},
		{"tag_key_long", func(m *Metric) { m.Tags = []Tag{{strings.Repeat("k", 256), ""}} }, RecordLimits{}, ErrFieldTooLong, "tags[0].key"},
		{"source_utf8", func(m *Metric) { m.Source = "\xff" }, RecordLimits{}, ErrInvalidUTF8, "source"},
		{"source_long", func(m *Metric) { m.Source = strings.Repeat("s", 256) }, RecordLimits{}, ErrFieldTooLong, "source"},
	}
	for _, tt := range tests {
		m := sampleMetric
		m.Tags = append([]Tag(nil), m.Tags...)
		tt.change(&m)
		err := m.Validate(tt.limits)
		var ve *ValidationError
		if !errors.Is(err, tt.want) || !errors.As(err, &ve) || ve.Field != tt.field || ve.Record != "metric" {
			t.Errorf("%s: Validate = %v (field %q), want %v on %s", tt.name, err, fieldOf(err), tt.want, tt.field)
		}
	}
	a := sampleAlert
	if err := a.Validate(RecordLimits{}); err != nil {
		t.Fatalf("sample alert: %v", err)
	}
	a.Message = strings.Repeat("m", 16385)
	if err := a.Validate(RecordLimits{}); !errors.Is(err, ErrFieldTooLong) {
		t.Errorf("long message: %v", err)
	}
	a.Message = "\xff"
	if err := a.Validate(RecordLimits{}); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("message utf8: %v", err)
	}
	a = sampleAlert
	a.Severity = Critical + 1
	if err := a.Validate(RecordLimits{}); !errors.Is(err, ErrInvalidSeverity) {
		t.Errorf("severity: %v", err)
	}
	a = sampleAlert
	a.Name = ""
	if err := a.Validate(RecordLimits{}); !errors.Is(err, ErrEmptyName) {
		t.Errorf("alert name: %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = ok.Validate(RecordLimits{}) }); n != 0 {
		t.Errorf("Validate of a valid metric: %v allocations", n)
	}
}

func fieldOf(err error) string {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Field
	}
	return ""
}

// TestValidateAfter: the cases where skipping the strings equal to prev's could go wrong.
func TestValidateAfter(t *testing.T) {
	prev := Metric{Name: "n", Kind: Gauge, Tags: []Tag{{"a", "1"}, {"b", "2"}}, Source: "s"}
	for _, tc := range []struct {
		name  string
		tags  []Tag
		edit  func(*Metric)
		want  error
		field string
	}{
		{name: "same keys, other values", tags: []Tag{{"a", "3"}, {"b", "4"}}},
		{name: "a changed key equal to another", tags: []Tag{{"a", "1"}, {"a", "2"}}, want: ErrDuplicateTag, field: "tags[1].key"},
		{name: "keys swapped", tags: []Tag{{"b", "2"}, {"a", "1"}}},
		{name: "fewer tags", tags: []Tag{{"a", "1"}}},
		{name: "one more, a duplicate", tags: []Tag{{"a", "1"}, {"b", "2"}, {"b", "3"}}, want: ErrDuplicateTag, field: "tags[2].key"},
		{name: "a bad value", tags: []Tag{{"a", "\xff"}, {"b", "2"}}, want: ErrInvalidUTF8, field: "tags[0].value"},
		{name: "an empty key", tags: []Tag{{"", "1"}, {"b", "2"}}, want: ErrEmptyTagKey, field: "tags[0].key"},
		{name: "an empty name", tags: prev.Tags, edit: func(m *Metric) { m.Name = "" }, want: ErrEmptyName, field: "name"},
		{name: "a bad source", tags: prev.Tags, edit: func(m *Metric) { m.Source = "\xff" }, want: ErrInvalidUTF8, field: "source"},
	} {
		m := prev
		m.Tags = tc.tags
		if tc.edit != nil {
			tc.edit(&m)
		}
		for _, p := range []*Metric{&prev, nil} {
			err := m.ValidateAfter(p, RecordLimits{})
			if !errors.Is(err, tc.want) || tc.want == nil && err != nil || fieldOf(err) != tc.field {
				t.Errorf("%s (prev %v): ValidateAfter = %v (field %q), want %v on %q", tc.name, p != nil, err, fieldOf(err), tc.want, tc.field)
			}
		}
	}
}

func TestKindAndSeverityNames(t *testing.T) {
	if Counter.String() != "counter" || Gauge.String() != "gauge" || Histogram.String() != "histogram" || MetricKind(9).String() != "MetricKind(9)" {
		t.Error("MetricKind.String")
	}
	if Info.String() != "info" || Warning.String() != "warning" || Critical.String() != "critical" || Severity(0).String() != "Severity(0)" {
		t.Error("Severity.String")
	}
}

func TestDecodeMetricManyTags(t *testing.T) {
	// More tags than the fast path keeps on the stack go through the general decoder.
	for _, n := range []int{maxFastTags, maxFastTags + 1, 64} {
		m := sampleMetric
		m.Tags = nil
		for i := range n {
			m.Tags = append(m.Tags, Tag{Key: fmt.Sprint("key", i), Value: fmt.Sprint("value", i)})
		}
		data, err := AppendMetric(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		var got Metric
		if err := DecodeMetric(data, &got); err != nil || !metricsEqual(&got, &m) {
			t.Fatalf("%d tags: %+v, %v", n, got, err)
		}
		if fast := decodeMetricFast(data, new(Metric)); fast != (n <= maxFastTags) {
			t.Fatalf("%d tags: fast path %v", n, fast)
		}
		a := sampleAlert
		a.Tags = m.Tags
		if data, err = AppendAlert(nil, &a); err != nil {
			t.Fatal(err)
		}
		var gotA Alert
		if err := DecodeAlert(data, &gotA); err != nil || !alertsEqual(&gotA, &a) {
			t.Fatalf("%d tags: %+v, %v", n, gotA, err)
		}
	}
}
