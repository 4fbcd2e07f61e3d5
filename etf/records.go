package etf

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// The Pharos records of docs/wire.md. As Erlang terms:
//
//	{metric, Name :: binary(), Kind :: counter | gauge | histogram, Value :: float(),
//	 Tags :: [{binary(), binary()}], TimestampMs :: integer(), Source :: binary()}
//	{alert, Name :: binary(), Severity :: info | warning | critical, Message :: binary(),
//	 Tags :: [{binary(), binary()}], TimestampMs :: integer(), Source :: binary()}
//
// Every string is a binary, never an atom; Value is a finite float; tags keep their order and their keys
// are distinct.

// MetricKind is the kind of a Metric. The zero value is invalid, so a Metric whose Kind was never set is
// refused rather than sent as a counter.
type MetricKind uint8

// Metric kinds, encoded as the atoms counter, gauge and histogram.
const (
	Counter MetricKind = iota + 1
	Gauge
	Histogram
)

var metricKindNames = [...]string{Counter: "counter", Gauge: "gauge", Histogram: "histogram"}

// String returns the atom's name, or "MetricKind(N)" for an invalid kind.
func (k MetricKind) String() string {
	if k.valid() {
		return metricKindNames[k]
	}
	return fmt.Sprintf("MetricKind(%d)", uint8(k))
}

func (k MetricKind) valid() bool { return k >= Counter && k <= Histogram }

// Severity is the severity of an Alert. The zero value is invalid.
type Severity uint8

// Severities, encoded as the atoms info, warning and critical.
const (
	Info Severity = iota + 1
	Warning
	Critical
)

var severityNames = [...]string{Info: "info", Warning: "warning", Critical: "critical"}

// String returns the atom's name, or "Severity(N)" for an invalid severity.
func (s Severity) String() string {
	if s.valid() {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

func (s Severity) valid() bool { return s >= Info && s <= Critical }

// Tag is one tag of a record: {Key, Value}, two binaries.
type Tag struct {
	Key, Value string
}

// Metric is {metric, Name, Kind, Value, Tags, TimestampMs, Source}.
type Metric struct {
	Name        string
	Kind        MetricKind
	Value       float64
	Tags        []Tag
	TimestampMs int64
	Source      string
}

// Alert is {alert, Name, Severity, Message, Tags, TimestampMs, Source}.
type Alert struct {
	Name        string
	Severity    Severity
	Message     string
	Tags        []Tag
	TimestampMs int64
	Source      string
}

// RecordLimits bound the fields Validate accepts. A zero field takes its default.
type RecordLimits struct {
	MaxNameBytes     int // Name; default 255
	MaxTags          int // number of tags; default 64
	MaxTagKeyBytes   int // each tag key; default 255
	MaxTagValueBytes int // each tag value; default 1024
	MaxMessageBytes  int // Alert.Message; default 16384
	MaxSourceBytes   int // Source; default 255
}

// The default record limits, DefaultRecordLimits' values.
const (
	defaultMaxNameBytes     = 255
	defaultMaxTags          = 64
	defaultMaxTagKeyBytes   = 255
	defaultMaxTagValueBytes = 1024
	defaultMaxMessageBytes  = 16384
	defaultMaxSourceBytes   = 255
)

// DefaultRecordLimits returns the limits used when a RecordLimits field is zero.
func DefaultRecordLimits() RecordLimits {
	return RecordLimits{
		MaxNameBytes:     defaultMaxNameBytes,
		MaxTags:          defaultMaxTags,
		MaxTagKeyBytes:   defaultMaxTagKeyBytes,
		MaxTagValueBytes: defaultMaxTagValueBytes,
		MaxMessageBytes:  defaultMaxMessageBytes,
		MaxSourceBytes:   defaultMaxSourceBytes,
	}
}

// fillDefaults gives every zero (or negative) field its default. Validate runs it once per
// record, so it is a handful of comparisons against constants (it showed in profiles of
// the acked path when it built DefaultRecordLimits each time).
func (l *RecordLimits) fillDefaults() {
	if l.MaxNameBytes <= 0 {
		l.MaxNameBytes = defaultMaxNameBytes
	}
	if l.MaxTags <= 0 {
		l.MaxTags = defaultMaxTags
	}
	if l.MaxTagKeyBytes <= 0 {
		l.MaxTagKeyBytes = defaultMaxTagKeyBytes
	}
	if l.MaxTagValueBytes <= 0 {
		l.MaxTagValueBytes = defaultMaxTagValueBytes
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = defaultMaxMessageBytes
	}
	if l.MaxSourceBytes <= 0 {
		l.MaxSourceBytes = defaultMaxSourceBytes
	}
}

// Validation sentinels, wrapped in *ValidationError.
var (
	ErrEmptyName       = errors.New("etf: empty name")
	ErrEmptyTagKey     = errors.New("etf: empty tag key")
	ErrDuplicateTag    = errors.New("etf: duplicate tag key")
	ErrFieldTooLong    = errors.New("etf: field longer than its limit")
	ErrTooManyTags     = errors.New("etf: more tags than MaxTags")
	ErrInvalidKind     = errors.New("etf: invalid metric kind")
	ErrInvalidSeverity = errors.New("etf: invalid alert severity")
)

// ValidationError names the record field that broke a rule: Field is "name", "value", "tags[3].key", ...
type ValidationError struct {
	Record string // "metric" or "alert"
	Field  string
	Err    error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("etf: %s.%s: %v", e.Record, e.Field, e.Err)
}

func (e *ValidationError) Unwrap() error { return e.Err }

// Validate checks the rules that protect the Brain: a non-empty name, a valid kind, a finite value,
// valid UTF-8 in every string, non-empty and distinct tag keys, and the lengths of l. It allocates
// nothing when the metric is valid.
func (m *Metric) Validate(l RecordLimits) error { return m.ValidateAfter(nil, l) }

// ValidateAfter is Validate for a metric that follows prev in a stream: it returns what Validate
// returns, but a string equal to the one in the same place of prev (the name, the source, a tag
// key or value at the same index) is not checked again, and neither are the tag keys for
// duplicates when they are prev's. In a stream of metrics most of these repeat, and checking them
// was most of the cost of validating one.
//
// prev must be nil or a metric that Validate (or ValidateAfter) accepted under the same limits
// and that has not changed since: with any other prev, an invalid string equal to prev's passes.
func (m *Metric) ValidateAfter(prev *Metric, l RecordLimits) error {
	l.fillDefaults()
	if prev == nil {
		prev = &Metric{}
	}
	if m.Name == "" || m.Name != prev.Name {
		if err := checkName("metric", m.Name, l); err != nil {
			return err
		}
	}
	if !m.Kind.valid() {
		return &ValidationError{"metric", "kind", ErrInvalidKind}
	}
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		return &ValidationError{"metric", "value", ErrNonFinite}
	}
	if err := checkTagsAfter("metric", m.Tags, prev.Tags, l); err != nil {
		return err
	}
	if m.Source != prev.Source {
		return checkString("metric", "source", m.Source, l.MaxSourceBytes)
	}
	return nil
}

// Validate checks an alert as Metric.Validate checks a metric; the message may be empty.
func (a *Alert) Validate(l RecordLimits) error {
	l.fillDefaults()
	if err := checkName("alert", a.Name, l); err != nil {
		return err
	}
	if !a.Severity.valid() {
		return &ValidationError{"alert", "severity", ErrInvalidSeverity}
	}
	if err := checkString("alert", "message", a.Message, l.MaxMessageBytes); err != nil {
		return err
	}
	if err := checkTags("alert", a.Tags, l); err != nil {
		return err
	}
	return checkString("alert", "source", a.Source, l.MaxSourceBytes)
}

func checkName(record, name string, l RecordLimits) error {
	if name == "" {
		return &ValidationError{record, "name", ErrEmptyName}
	}
	return checkString(record, "name", name, l.MaxNameBytes)
}

func checkString(record, field, s string, maxBytes int) error {
	if len(s) > maxBytes {
		return &ValidationError{record, field, fmt.Errorf("%w: %d bytes, limit %d", ErrFieldTooLong, len(s), maxBytes)}
	}
	if !utf8.ValidString(s) {
		return &ValidationError{record, field, ErrInvalidUTF8}
	}
	return nil
}

func checkTags(record string, tags []Tag, l RecordLimits) error {
	return checkTagsAfter(record, tags, nil, l)
}

// checkTagsAfter is checkTags for tags that follow prev, valid tags under the same limits: a key
// or value equal to prev's at the same index is valid, and keys that are all prev's are distinct.
func checkTagsAfter(record string, tags, prev []Tag, l RecordLimits) error {
	if len(tags) > l.MaxTags {
		return &ValidationError{record, "tags", fmt.Errorf("%w: %d tags, limit %d", ErrTooManyTags, len(tags), l.MaxTags)}
	}
	prevKeys := len(tags) == len(prev)
	for i, t := range tags {
		if i >= len(prev) || t.Key != prev[i].Key {
			prevKeys = false
			if t.Key == "" {
				return &ValidationError{record, fmt.Sprintf("tags[%d].key", i), ErrEmptyTagKey}
			}
			if err := checkString(record, "", t.Key, l.MaxTagKeyBytes); err != nil {
				err.(*ValidationError).Field = fmt.Sprintf("tags[%d].key", i)
				return err
			}
		}
		if i < len(prev) && t.Value == prev[i].Value {
			continue
		}
		if err := checkString(record, "", t.Value, l.MaxTagValueBytes); err != nil {
			err.(*ValidationError).Field = fmt.Sprintf("tags[%d].value", i)
			return err
		}
	}
	if prevKeys {
		return nil
	}
	if i, ok := duplicateTag(tags); ok {
		return &ValidationError{record, fmt.Sprintf("tags[%d].key", i), fmt.Errorf("%w: %q", ErrDuplicateTag, tags[i].Key)}
	}
	return nil
}

// duplicateTag returns the index of the first tag whose key an earlier tag already has.
func duplicateTag(tags []Tag) (int, bool) {
	if len(tags) <= 32 {
		for i := 1; i < len(tags); i++ {
			for j := 0; j < i; j++ {
				if tags[i].Key == tags[j].Key {
					return i, true
				}
			}
		}
		return 0, false
	}
	seen := make(map[string]struct{}, len(tags))
	for i, t := range tags {
		if _, dup := seen[t.Key]; dup {
			return i, true
		}
		seen[t.Key] = struct{}{}
	}
	return 0, false
}
