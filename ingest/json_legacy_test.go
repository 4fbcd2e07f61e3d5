package ingest

// The HTTP JSON decoder as it was before jsontext (encoding/json's token API), kept as the oracle
// of FuzzDecodeMatchesLegacy: the new decoder must accept, refuse and report exactly as it did.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/pharos-node/pharos-node/etf"
)

// legacySplitBody returns the raw JSON text of each record of body: the one object, or each element of the
// array. Elements are not checked here; a body that is not well-formed JSON is ErrMalformedJSON, one
// with more than maxRecords elements ErrTooManyRecords.
func legacySplitBody(body []byte, maxRecords int) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformedJSON)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var records []json.RawMessage
	switch trimmed[0] {
	case '{':
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
		records = append(records, raw)
	case '[':
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
		for dec.More() {
			if len(records) >= maxRecords {
				return nil, fmt.Errorf("%w: more than %d", ErrTooManyRecords, maxRecords)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("%w: element %d: %w", ErrMalformedJSON, len(records), err)
			}
			records = append(records, raw)
		}
		if _, err := dec.Token(); err != nil { // the closing bracket
			return nil, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
	default:
		return nil, fmt.Errorf("%w: want an object or an array, got %q", ErrMalformedJSON, trimmed[0])
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the top-level value", ErrMalformedJSON)
	}
	return records, nil
}

// legacyRecordDecoder reads one record object as a token stream.
type legacyRecordDecoder struct {
	dec  *json.Decoder
	seen int
}

func newLegacyRecordDecoder(raw []byte) (*legacyRecordDecoder, error) {
	if !utf8.Valid(raw) {
		return nil, &FieldError{Err: ErrInvalidUTF8JSON}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, &FieldError{Err: fmt.Errorf("%w: %w", ErrNotObject, err)}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &FieldError{Err: fmt.Errorf("%w: got %s", ErrNotObject, legacyDescribe(tok))}
	}
	return &legacyRecordDecoder{dec: dec}, nil
}

// fields calls f with each field name of the object, f reading the field's value; it returns the
// first error. A repeated field is ErrDuplicateField; bit maps known names to their bit (0: unknown).
func (r *legacyRecordDecoder) fields(bit func(name string) int, f func(name string) error) error {
	for r.dec.More() {
		tok, err := r.dec.Token()
		if err != nil {
			return &FieldError{Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
		}
		name, _ := tok.(string) // object keys are always strings
		b := bit(name)
		if b == 0 {
			return &FieldError{Field: name, Err: ErrUnknownField}
		}
		if r.seen&b != 0 {
			return &FieldError{Field: name, Err: ErrDuplicateField}
		}
		r.seen |= b
		if err := f(name); err != nil {
			return err
		}
	}
	if _, err := r.dec.Token(); err != nil { // the closing brace
		return &FieldError{Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
	}
	return nil
}

// token returns the next token; null is (nil, false).
func (r *legacyRecordDecoder) token(field string) (json.Token, bool, error) {
	tok, err := r.dec.Token()
	if err != nil {
		return nil, false, &FieldError{Field: field, Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
	}
	return tok, tok != nil, nil
}

// string reads a string field; null is ("", false).
func (r *legacyRecordDecoder) string(field string) (string, bool, error) {
	tok, present, err := r.token(field)
	if err != nil || !present {
		return "", false, err
	}
	s, ok := tok.(string)
	if !ok {
		return "", false, &FieldError{Field: field, Err: fmt.Errorf("%w: want a string, got %s", ErrWrongType, legacyDescribe(tok))}
	}
	return s, true, nil
}

// number reads a number field; null is ("", false).
func (r *legacyRecordDecoder) number(field string) (json.Number, bool, error) {
	tok, present, err := r.token(field)
	if err != nil || !present {
		return "", false, err
	}
	n, ok := tok.(json.Number)
	if !ok {
		return "", false, &FieldError{Field: field, Err: fmt.Errorf("%w: want a number, got %s", ErrWrongType, legacyDescribe(tok))}
	}
	return n, true, nil
}

// timestamp reads timestamp_ms: an integer number of milliseconds.
func (r *legacyRecordDecoder) timestamp() (int64, bool, error) {
	n, present, err := r.number("timestamp_ms")
	if err != nil || !present {
		return 0, false, err
	}
	ms, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, false, &FieldError{Field: "timestamp_ms", Err: fmt.Errorf("%w: want an integer of milliseconds in int64, got %s", ErrOutOfRange, n)}
	}
	return ms, true, nil
}

// tags reads the tags field: an object of string values, or an array of [key, value] string pairs, in
// the order written. Null is no tags.
func (r *legacyRecordDecoder) tags() ([]etf.Tag, error) {
	tok, present, err := r.token("tags")
	if err != nil || !present {
		return nil, err
	}
	d, _ := tok.(json.Delim)
	switch d {
	case '{':
		var tags []etf.Tag
		for r.dec.More() {
			field := fmt.Sprintf("tags[%d]", len(tags))
			tok, err := r.dec.Token()
			if err != nil {
				return nil, &FieldError{Field: field, Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
			}
			key, _ := tok.(string)
			value, present, err := r.string(field)
			if err != nil {
				return nil, err
			}
			if !present {
				return nil, &FieldError{Field: field, Err: fmt.Errorf("%w: tag %q: want a string, got null", ErrWrongType, key)}
			}
			tags = append(tags, etf.Tag{Key: key, Value: value})
		}
		if _, err := r.dec.Token(); err != nil {
			return nil, &FieldError{Field: "tags", Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
		}
		return tags, nil
	case '[':
		tags := []etf.Tag{}
		for r.dec.More() {
			field := fmt.Sprintf("tags[%d]", len(tags))
			tag, err := r.tagPair(field)
			if err != nil {
				return nil, err
			}
			tags = append(tags, tag)
		}
		if _, err := r.dec.Token(); err != nil {
			return nil, &FieldError{Field: "tags", Err: fmt.Errorf("%w: %w", ErrWrongType, err)}
		}
		return tags, nil
	}
	return nil, &FieldError{Field: "tags", Err: fmt.Errorf("%w: want an object or an array of [key, value] pairs, got %s", ErrWrongType, legacyDescribe(tok))}
}

// tagPair reads ["key", "value"].
func (r *legacyRecordDecoder) tagPair(field string) (etf.Tag, error) {
	errPair := &FieldError{Field: field, Err: fmt.Errorf("%w: want a [key, value] pair of two strings", ErrWrongType)}
	tok, err := r.dec.Token()
	if err != nil {
		return etf.Tag{}, errPair
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return etf.Tag{}, errPair
	}
	var kv [2]string
	for i := range kv {
		s, present, err := r.string(field)
		if err != nil || !present {
			return etf.Tag{}, errPair
		}
		kv[i] = s
	}
	if r.dec.More() {
		return etf.Tag{}, errPair
	}
	if _, err := r.dec.Token(); err != nil {
		return etf.Tag{}, errPair
	}
	return etf.Tag{Key: kv[0], Value: kv[1]}, nil
}

func legacyMetricFieldBit(name string) int {
	switch name {
	case "name":
		return fieldName
	case "kind":
		return fieldKind
	case "value":
		return fieldValue
	case "tags":
		return fieldTags
	case "timestamp_ms":
		return fieldTimestamp
	case "source":
		return fieldSource
	}
	return 0
}

func legacyAlertFieldBit(name string) int {
	switch name {
	case "name":
		return fieldName
	case "severity":
		return fieldSeverity
	case "message":
		return fieldMessage
	case "tags":
		return fieldTags
	case "timestamp_ms":
		return fieldTimestamp
	case "source":
		return fieldSource
	}
	return 0
}

// legacyDecodeMetric decodes one metric object. It does not validate the result with etf (the pipeline
// does), but every field has the right JSON type and kind a known name.
func legacyDecodeMetric(raw []byte, def recordDefaults) (etf.Metric, error) {
	r, err := newLegacyRecordDecoder(raw)
	if err != nil {
		return etf.Metric{}, err
	}
	m := etf.Metric{TimestampMs: def.timestampMs, Source: def.source}
	var present int // fields given and not null
	err = r.fields(legacyMetricFieldBit, func(name string) error {
		var ok bool
		var err error
		switch name {
		case "name":
			m.Name, ok, err = r.string(name)
		case "kind":
			var s string
			if s, ok, err = r.string(name); err == nil && ok {
				m.Kind, err = parseKind(s)
			}
		case "value":
			var n json.Number
			if n, ok, err = r.number(name); err == nil && ok {
				m.Value, err = legacyParseValue(n)
			}
		default:
			ok, err = r.commonField(name, &m.Tags, &m.TimestampMs, &m.Source)
		}
		if ok {
			present |= legacyMetricFieldBit(name)
		}
		return err
	})
	if err != nil {
		return etf.Metric{}, err
	}
	if err := legacyRequireFields(present, legacyRequiredField{fieldName, "name"}, legacyRequiredField{fieldKind, "kind"}, legacyRequiredField{fieldValue, "value"}); err != nil {
		return etf.Metric{}, err
	}
	return m, nil
}

// commonField decodes the fields metrics and alerts share (tags, timestamp_ms, source) into the
// given places; ok reports whether the field was present (null leaves the default).
func (r *legacyRecordDecoder) commonField(name string, tags *[]etf.Tag, timestampMs *int64, source *string) (ok bool, err error) {
	switch name {
	case "tags":
		*tags, err = r.tags()
		return *tags != nil, err
	case "timestamp_ms":
		var ms int64
		if ms, ok, err = r.timestamp(); ok {
			*timestampMs = ms
		}
	case "source":
		var s string
		if s, ok, err = r.string(name); ok {
			*source = s
		}
	}
	return ok, err
}

// legacyRequiredField is a field a record must have: its presence bit and its name.
type legacyRequiredField struct {
	bit  int
	name string
}

// legacyRequireFields names the first required field missing from present.
func legacyRequireFields(present int, fields ...legacyRequiredField) error {
	for _, f := range fields {
		if present&f.bit == 0 {
			return &FieldError{Field: f.name, Err: ErrMissingField}
		}
	}
	return nil
}

// legacyDecodeAlert decodes one alert object.
func legacyDecodeAlert(raw []byte, def recordDefaults) (etf.Alert, error) {
	r, err := newLegacyRecordDecoder(raw)
	if err != nil {
		return etf.Alert{}, err
	}
	a := etf.Alert{TimestampMs: def.timestampMs, Source: def.source}
	var present int
	err = r.fields(legacyAlertFieldBit, func(name string) error {
		var ok bool
		var err error
		switch name {
		case "name":
			a.Name, ok, err = r.string(name)
		case "severity":
			var s string
			if s, ok, err = r.string(name); err == nil && ok {
				a.Severity, err = parseSeverity(s)
			}
		case "message":
			a.Message, ok, err = r.string(name)
		default:
			ok, err = r.commonField(name, &a.Tags, &a.TimestampMs, &a.Source)
		}
		if ok {
			present |= legacyAlertFieldBit(name)
		}
		return err
	})
	if err != nil {
		return etf.Alert{}, err
	}
	if err := legacyRequireFields(present, legacyRequiredField{fieldName, "name"}, legacyRequiredField{fieldSeverity, "severity"}); err != nil {
		return etf.Alert{}, err
	}
	return a, nil
}

// legacyParseValue parses a JSON number; one beyond float64's range is refused here, since JSON has no
// NaN or infinity and such a value would otherwise turn into one.
func legacyParseValue(n json.Number) (float64, error) {
	v, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, &FieldError{Field: "value", Err: fmt.Errorf("%w: %s does not fit a float64", ErrOutOfRange, n)}
		}
		return 0, &FieldError{Field: "value", Err: fmt.Errorf("%w: %s", ErrWrongType, n)}
	}
	return v, nil
}

// legacyDescribe names the JSON type of a token, for error messages.
func legacyDescribe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", rune(v))
	}
	return fmt.Sprintf("%T", tok)
}
