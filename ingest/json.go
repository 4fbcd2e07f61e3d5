package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/pharos-node/pharos-node/etf"
)

// The JSON form of the records (WIRE.md's fields, snake_case):
//
//	{"name": "cpu.load", "kind": "gauge", "value": 0.42,
//	 "tags": {"host": "a", "dc": "x"},            // or [["host", "a"], ["dc", "x"]]
//	 "timestamp_ms": 1700000000000,                // optional: the time the request arrived
//	 "source": "api"}                              // optional: HTTPOptions.Source
//	{"name": "disk.full", "severity": "critical", "message": "/var at 98%",
//	 "tags": [], "timestamp_ms": 1700000000000, "source": "api"}
//
// A body is one such object or an array of them. Tags keep the order of the text in both forms.
// kind is counter, gauge or histogram; severity is info, warning or critical; message defaults to
// "". A null field counts as absent. Unknown and repeated fields are refused, so that a typo does
// not silently drop data.
//
// Decoding is jsontext's (github.com/go-json-experiment/json, the mirror of Go's encoding/json/v2)
// value by value (eachRecord, json_body.go): one pass for a body of valid UTF-8, the syntax
// checked as the records are read; split's two passes otherwise. Values are slices of the body,
// never copied into tokens; a string without escapes becomes a substring of the body, so a record
// costs no allocation of its own. docs/ingest.md has the measurements and the reasons.

// recordDefaults are what a record without timestamp_ms or source gets.
type recordDefaults struct {
	timestampMs int64
	source      string
}

// span is the extent of one record in a body: body[start:end].
type span struct{ start, end int }

// jsonReader decodes request bodies. One serves one request at a time; the Handler keeps a pool.
type jsonReader struct {
	dec     jsontext.Decoder
	in      bytes.Buffer // wraps the body: jsontext then reads it in place, without a copy
	text    string       // the body as a string: unescaped JSON strings are substrings of it
	opts    []jsontext.Options
	scratch []byte // unquoting strings with escapes
	spans   []span
	// syntaxErr is the first tokenizer error met while decoding records in one pass (eachRecord):
	// the body is not JSON.
	syntaxErr error

	// Buffers of the Handler's requests, used again by the next request when the sink does not
	// keep what it is given (a MetricsSink); see Handler.ServeHTTP.
	body     []byte
	msBuf    []etf.Metric
	indexBuf []int
	tagBuf   []etf.Tag
}

// maxPooledBody is the largest body buffer a pooled reader keeps for the next request: larger
// ones are left to the collector, so that idle pooled buffers stay small beside the in-flight
// budget.
const maxPooledBody = 64 << 10

// bodyBuffer returns a buffer of n bytes for a request body: the reader's own when it is large
// enough, else a new one.
func (r *jsonReader) bodyBuffer(n int) []byte {
	if n <= cap(r.body) {
		return r.body[:n]
	}
	b := make([]byte, n)
	if n <= maxPooledBody {
		r.body = b
	}
	return b
}

// newJSONReader returns a reader with the options every body is read with: duplicate names and
// invalid UTF-8 pass the syntax check, since they are refused record by record (ErrDuplicateField
// or a duplicate tag key from Validate; ErrInvalidUTF8JSON) rather than for the whole request.
func newJSONReader() *jsonReader {
	return &jsonReader{opts: []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}}
}

// reset makes the reader read body from its start; text is body as a string (the same bytes).
func (r *jsonReader) reset(body []byte, text string) {
	r.in = *bytes.NewBuffer(body)
	r.text = text
	r.dec.Reset(&r.in, r.opts...)
}

// release drops the references to the last body, so that a pooled reader keeps no request alive.
func (r *jsonReader) release() {
	r.in = bytes.Buffer{}
	r.text = ""
	r.dec.Reset(&r.in, r.opts...)
	r.spans = r.spans[:0]
	r.syntaxErr = nil
}

// Fields of a record, as bits of a set.
const (
	fieldName = 1 << iota
	fieldKind
	fieldValue
	fieldSeverity
	fieldMessage
	fieldTags
	fieldTimestamp
	fieldSource
)

// fieldBit maps a field name to its bit; alerts says which record type. 0: unknown.
func fieldBit(name string, alerts bool) int {
	switch name {
	case "name":
		return fieldName
	case "tags":
		return fieldTags
	case "timestamp_ms":
		return fieldTimestamp
	case "source":
		return fieldSource
	case "kind":
		if !alerts {
			return fieldKind
		}
	case "value":
		if !alerts {
			return fieldValue
		}
	case "severity":
		if alerts {
			return fieldSeverity
		}
	case "message":
		if alerts {
			return fieldMessage
		}
	}
	return 0
}

// record is what one JSON record decodes into before it becomes a Metric or an Alert.
type record struct {
	metric etf.Metric
	alert  etf.Alert
}

// decodeRecord reads the record at the decoder's position, whose text is raw. Whatever the error,
// it leaves the decoder after the record. tags is where the record's tags are appended (the
// caller's arena); it returns it extended.
// raw nil: the whole body is known to be valid UTF-8.
func (r *jsonReader) decodeRecord(alerts bool, def recordDefaults, rec *record, tags []etf.Tag, raw []byte) ([]etf.Tag, error) {
	depth := r.dec.StackDepth()
	tags, opened, err := r.decodeObject(alerts, def, rec, tags, raw)
	if err != nil {
		if isSyntaxError(err) {
			r.noteSyntax(err)
			return tags, err
		}
		r.skipRecord(depth, opened)
	}
	return tags, err
}

// noteSyntax keeps the first tokenizer error.
func (r *jsonReader) noteSyntax(err error) {
	if r.syntaxErr == nil {
		r.syntaxErr = err
	}
}

// skipRecord moves the decoder past a record that failed: one whose opening brace was read is
// read on until the decoder is back at depth; one that was not opened is skipped whole. It stops at
// the first syntax error (a body split has checked has none).
func (r *jsonReader) skipRecord(depth int, opened bool) {
	if !opened {
		if err := r.dec.SkipValue(); err != nil {
			r.noteSyntax(err)
		}
		return
	}
	for r.dec.StackDepth() > depth {
		if _, err := r.dec.ReadToken(); err != nil {
			r.noteSyntax(err)
			return
		}
	}
}

// decodeObject decodes one record; opened reports whether its opening brace was read.
func (r *jsonReader) decodeObject(alerts bool, def recordDefaults, rec *record, tags []etf.Tag, raw []byte) (_ []etf.Tag, opened bool, _ error) {
	if raw != nil && !utf8.Valid(raw) {
		return tags, false, &FieldError{Err: ErrInvalidUTF8JSON}
	}
	if k := r.dec.PeekKind(); k != jsontext.KindBeginObject {
		if k == jsontext.KindInvalid {
			_, err := r.dec.ReadToken()
			return tags, false, &FieldError{Err: fmt.Errorf("%w: %w", ErrNotObject, err)}
		}
		return tags, false, &FieldError{Err: fmt.Errorf("%w: got %s", ErrNotObject, describe(k))}
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return tags, false, &FieldError{Err: fmt.Errorf("%w: %w", ErrNotObject, err)}
	}
	tags, err := r.decodeFields(alerts, def, rec, tags)
	return tags, true, err
}

// decodeFields reads the fields of a record whose opening brace was read, and its closing brace.
func (r *jsonReader) decodeFields(alerts bool, def recordDefaults, rec *record, tags []etf.Tag) ([]etf.Tag, error) {
	m, a := &rec.metric, &rec.alert
	*m = etf.Metric{TimestampMs: def.timestampMs, Source: def.source}
	*a = etf.Alert{TimestampMs: def.timestampMs, Source: def.source}
	var seen, present int // fields given; fields given and not null
	for r.dec.PeekKind() != jsontext.KindEndObject {
		name, err := r.readName()
		if err != nil {
			return tags, &FieldError{Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
		}
		b := fieldBit(name, alerts)
		if b == 0 {
			return tags, &FieldError{Field: name, Err: ErrUnknownField}
		}
		if seen&b != 0 {
			return tags, &FieldError{Field: name, Err: ErrDuplicateField}
		}
		seen |= b
		var ok bool
		switch b {
		case fieldName:
			var s string
			if s, ok, err = r.string(named(name)); ok {
				m.Name, a.Name = s, s
			}
		case fieldKind:
			var s string
			if s, ok, err = r.string(named(name)); err == nil && ok {
				m.Kind, err = parseKind(s)
			}
		case fieldValue:
			var s string
			if s, ok, err = r.number(named(name)); err == nil && ok {
				m.Value, err = parseValue(s)
			}
		case fieldSeverity:
			var s string
			if s, ok, err = r.string(named(name)); err == nil && ok {
				a.Severity, err = parseSeverity(s)
			}
		case fieldMessage:
			a.Message, ok, err = r.string(named(name))
		case fieldTags:
			start := len(tags)
			var object bool
			tags, object, err = r.tags(tags)
			if err == nil {
				t := tags[start:len(tags):len(tags)]
				if object && len(t) == 0 {
					t = nil // {} is no tags, as before; [] an empty list
				}
				ok = t != nil
				m.Tags, a.Tags = t, t
			}
		case fieldTimestamp:
			var ms int64
			if ms, ok, err = r.timestamp(); ok {
				m.TimestampMs, a.TimestampMs = ms, ms
			}
		case fieldSource:
			var s string
			if s, ok, err = r.string(named(name)); ok {
				m.Source, a.Source = s, s
			}
		}
		if err != nil {
			return tags, err
		}
		if ok {
			present |= b
		}
	}
	if _, err := r.dec.ReadToken(); err != nil { // the closing brace
		return tags, &FieldError{Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
	}
	if alerts {
		return tags, requireFields(present, requiredField{fieldName, "name"}, requiredField{fieldSeverity, "severity"})
	}
	return tags, requireFields(present, requiredField{fieldName, "name"}, requiredField{fieldKind, "kind"}, requiredField{fieldValue, "value"})
}

// readName reads an object member's name.
func (r *jsonReader) readName() (string, error) {
	v, err := r.dec.ReadValue()
	if err != nil {
		return "", err
	}
	return r.unquote(v), nil
}

// value reads the next value.
func (r *jsonReader) value() (jsontext.Value, error) {
	return r.dec.ReadValue()
}

// textOf returns the text of v, the value just read, as a substring of the body.
func (r *jsonReader) textOf(v jsontext.Value) string {
	end := int(r.dec.InputOffset())
	return r.text[end-len(v) : end]
}

// unquote returns the string v (quoted, just read): a substring of the body when it has no
// escapes. An escaped lone surrogate becomes U+FFFD, as encoding/json does.
func (r *jsonReader) unquote(v jsontext.Value) string {
	if bytes.IndexByte(v, '\\') < 0 {
		s := r.textOf(v)
		return s[1 : len(s)-1]
	}
	out, _ := jsontext.AppendUnquote(r.scratch[:0], v) // the only error left: invalid surrogates, replaced
	r.scratch = out
	return string(out)
}

// string reads a string field; null is ("", false).
func (r *jsonReader) string(f field) (string, bool, error) {
	switch k := r.dec.PeekKind(); k {
	case jsontext.KindNull:
		_, err := r.value()
		return "", false, wrapField(f, err)
	case jsontext.KindString:
		v, err := r.value()
		if err != nil {
			return "", false, wrapField(f, err)
		}
		return r.unquote(v), true, nil
	default:
		return "", false, &FieldError{Field: f.String(), Err: fmt.Errorf("%w: want a string, got %s", ErrWrongType, describe(k))}
	}
}

// number reads a number field as its text; null is ("", false).
func (r *jsonReader) number(f field) (string, bool, error) {
	switch k := r.dec.PeekKind(); k {
	case jsontext.KindNull:
		_, err := r.value()
		return "", false, wrapField(f, err)
	case jsontext.KindNumber:
		v, err := r.value()
		if err != nil {
			return "", false, wrapField(f, err)
		}
		return r.textOf(v), true, nil
	default:
		return "", false, &FieldError{Field: f.String(), Err: fmt.Errorf("%w: want a number, got %s", ErrWrongType, describe(k))}
	}
}

// wrapField is the FieldError of a syntax error (only in text split has not checked).
func wrapField(f field, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Field: f.String(), Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
}

// timestamp reads timestamp_ms: an integer number of milliseconds.
func (r *jsonReader) timestamp() (int64, bool, error) {
	n, present, err := r.number(named("timestamp_ms"))
	if err != nil || !present {
		return 0, false, err
	}
	ms, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return 0, false, &FieldError{Field: "timestamp_ms", Err: fmt.Errorf("%w: want an integer of milliseconds in int64, got %s", ErrOutOfRange, n)}
	}
	return ms, true, nil
}

// tags reads the tags field, an object of string values or an array of [key, value] string pairs,
// appending them to dst in the order written. object reports the object form; null is no tags.
func (r *jsonReader) tags(dst []etf.Tag) (_ []etf.Tag, object bool, err error) {
	k := r.dec.PeekKind()
	switch k {
	case jsontext.KindNull:
		_, err := r.value()
		return dst, true, wrapField(named("tags"), err)
	case jsontext.KindBeginObject:
		if _, err := r.dec.ReadToken(); err != nil {
			return dst, true, wrapField(named("tags"), err)
		}
		for i := 0; r.dec.PeekKind() != jsontext.KindEndObject; i++ {
			f := tagField(i)
			key, err := r.readName()
			if err != nil {
				return dst, true, wrapField(f, err)
			}
			value, present, err := r.string(f)
			if err != nil {
				return dst, true, err
			}
			if !present {
				return dst, true, &FieldError{Field: f.String(), Err: fmt.Errorf("%w: tag %q: want a string, got null", ErrWrongType, key)}
			}
			dst = append(dst, etf.Tag{Key: key, Value: value})
		}
		_, err := r.dec.ReadToken()
		return dst, true, wrapField(named("tags"), err)
	case jsontext.KindBeginArray:
		if _, err := r.dec.ReadToken(); err != nil {
			return dst, false, wrapField(named("tags"), err)
		}
		for i := 0; r.dec.PeekKind() != jsontext.KindEndArray; i++ {
			tag, err := r.tagPair(tagField(i))
			if err != nil {
				return dst, false, err
			}
			dst = append(dst, tag)
		}
		_, err := r.dec.ReadToken()
		return dst, false, wrapField(named("tags"), err)
	}
	return dst, false, &FieldError{Field: "tags", Err: fmt.Errorf("%w: want an object or an array of [key, value] pairs, got %s", ErrWrongType, describe(k))}
}

// field names a field in errors: a record's field, or (tag >= 0) its tag number tag. The name is
// made only for an error: a string per tag would cost an allocation per tag.
type field struct {
	name string
	tag  int
}

func named(name string) field { return field{name: name, tag: -1} }

func tagField(i int) field { return field{tag: i} }

func (f field) String() string {
	if f.tag < 0 {
		return f.name
	}
	return "tags[" + strconv.Itoa(f.tag) + "]"
}

// tagPair reads ["key", "value"].
func (r *jsonReader) tagPair(f field) (etf.Tag, error) {
	errPair := func() error {
		return &FieldError{Field: f.String(), Err: fmt.Errorf("%w: want a [key, value] pair of two strings", ErrWrongType)}
	}
	if r.dec.PeekKind() != jsontext.KindBeginArray {
		return etf.Tag{}, errPair()
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return etf.Tag{}, errPair()
	}
	var kv [2]string
	for i := range kv {
		if r.dec.PeekKind() != jsontext.KindString {
			return etf.Tag{}, errPair()
		}
		v, err := r.value()
		if err != nil {
			return etf.Tag{}, errPair()
		}
		kv[i] = r.unquote(v)
	}
	if r.dec.PeekKind() != jsontext.KindEndArray {
		return etf.Tag{}, errPair()
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return etf.Tag{}, errPair()
	}
	return etf.Tag{Key: kv[0], Value: kv[1]}, nil
}

// requiredField is a field a record must have: its presence bit and its name.
type requiredField struct {
	bit  int
	name string
}

// requireFields names the first required field missing from present.
func requireFields(present int, fields ...requiredField) error {
	for _, f := range fields {
		if present&f.bit == 0 {
			return &FieldError{Field: f.name, Err: ErrMissingField}
		}
	}
	return nil
}

// decodeOne decodes raw, the text of one record, on its own.
func decodeOne(raw []byte, alerts bool, def recordDefaults) (record, error) {
	r := newJSONReader()
	r.reset(raw, string(raw))
	var rec record
	_, err := r.decodeRecord(alerts, def, &rec, nil, raw)
	return rec, err
}

// decodeMetric decodes one metric object. It does not validate the result with etf (the pipeline
// does), but every field has the right JSON type and kind a known name.
func decodeMetric(raw []byte, def recordDefaults) (etf.Metric, error) {
	rec, err := decodeOne(raw, false, def)
	if err != nil {
		return etf.Metric{}, err
	}
	return rec.metric, nil
}

// decodeAlert decodes one alert object.
func decodeAlert(raw []byte, def recordDefaults) (etf.Alert, error) {
	rec, err := decodeOne(raw, true, def)
	if err != nil {
		return etf.Alert{}, err
	}
	return rec.alert, nil
}

func parseKind(s string) (etf.MetricKind, error) {
	switch s {
	case "counter":
		return etf.Counter, nil
	case "gauge":
		return etf.Gauge, nil
	case "histogram":
		return etf.Histogram, nil
	}
	return 0, &FieldError{Field: "kind", Err: fmt.Errorf("%w: %q is not counter, gauge or histogram", ErrUnknownEnum, s)}
}

func parseSeverity(s string) (etf.Severity, error) {
	switch s {
	case "info":
		return etf.Info, nil
	case "warning":
		return etf.Warning, nil
	case "critical":
		return etf.Critical, nil
	}
	return 0, &FieldError{Field: "severity", Err: fmt.Errorf("%w: %q is not info, warning or critical", ErrUnknownEnum, s)}
}

// parseValue parses a JSON number; one beyond float64's range is refused here, since JSON has no
// NaN or infinity and such a value would otherwise turn into one.
func parseValue(n string) (float64, error) {
	v, err := strconv.ParseFloat(n, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, &FieldError{Field: "value", Err: fmt.Errorf("%w: %s does not fit a float64", ErrOutOfRange, n)}
		}
		return 0, &FieldError{Field: "value", Err: fmt.Errorf("%w: %s", ErrWrongType, n)}
	}
	return v, nil
}

// describe names a JSON kind for error messages.
func describe(k jsontext.Kind) string {
	switch k {
	case jsontext.KindNull:
		return "null"
	case jsontext.KindTrue, jsontext.KindFalse:
		return "a boolean"
	case jsontext.KindNumber:
		return "a number"
	case jsontext.KindString:
		return "a string"
	case jsontext.KindBeginObject:
		return "an object"
	case jsontext.KindBeginArray:
		return "an array"
	}
	return fmt.Sprintf("%q", rune(k))
}
