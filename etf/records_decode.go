package etf

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// DecodeMetric decodes the bytes of term_to_binary(Metric), as any OTP release writes them (ATOM_EXT or
// UTF-8 atoms, NEW_FLOAT_EXT or FLOAT_EXT, compressed or not), into m, reusing the backing array of
// m.Tags. It checks the shape, not Validate's rules. The encodings BEAM writes, with up to 16 tags,
// take a fast path that allocates one string holding all of the record's strings (plus Tags when its
// capacity is short); anything else (FLOAT_EXT, compressed terms, more tags, unusual encodings) goes
// through Unmarshal under DefaultLimits, and FuzzDecodeRecord checks that both paths agree. A term of
// another shape gives ErrNotRecord; on any error m is left unchanged.
func DecodeMetric(data []byte, m *Metric) error {
	if decodeMetricFast(data, m) {
		return nil
	}
	v, err := Unmarshal(data)
	if err != nil {
		return err
	}
	return metricFromTerm(v, m)
}

// DecodeAlert decodes the bytes of term_to_binary(Alert) into a, as DecodeMetric does for metrics.
func DecodeAlert(data []byte, a *Alert) error {
	if decodeAlertFast(data, a) {
		return nil
	}
	v, err := Unmarshal(data)
	if err != nil {
		return err
	}
	return alertFromTerm(v, a)
}

// recReader is the fast path: it accepts only the encodings BEAM writes for the records and says false
// on anything else, leaving the verdict to the general decoder. It first records where each string lies
// (spans), then copies them into one allocation that all the record's strings share.
type recReader struct {
	b []byte
	p int
}

// span is a string's place in the input.
type span struct{ off, n int }

// maxFastTags is how many tags the fast path handles with spans on the stack; more take the general
// decoder.
const maxFastTags = 16

func (r *recReader) left() int { return len(r.b) - r.p }

func (r *recReader) atom() ([]byte, bool) {
	if r.left() < 2 {
		return nil, false
	}
	var n int
	switch r.b[r.p] {
	case TagSmallAtomUTF8, TagSmallAtom:
		n, r.p = int(r.b[r.p+1]), r.p+2
	case TagAtom, TagAtomUTF8:
		if r.left() < 3 {
			return nil, false
		}
		n, r.p = int(binary.BigEndian.Uint16(r.b[r.p+1:])), r.p+3
	default:
		return nil, false
	}
	if r.left() < n {
		return nil, false
	}
	a := r.b[r.p : r.p+n]
	r.p += n
	return a, true
}

// binary appends the span of a BINARY_EXT to spans.
func (r *recReader) binary(spans []span) ([]span, bool) {
	if r.left() < 5 || r.b[r.p] != TagBinary {
		return spans, false
	}
	n := uint64(binary.BigEndian.Uint32(r.b[r.p+1:]))
	r.p += 5
	if uint64(r.left()) < n {
		return spans, false
	}
	spans = append(spans, span{r.p, int(n)})
	r.p += int(n)
	return spans, true
}

func (r *recReader) float() (float64, bool) {
	if r.left() < 9 || r.b[r.p] != TagNewFloat {
		return 0, false
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(r.b[r.p+1:]))
	r.p += 9
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

func (r *recReader) integer() (int64, bool) {
	if r.left() < 2 {
		return 0, false
	}
	switch r.b[r.p] {
	case TagSmallInteger:
		r.p += 2
		return int64(r.b[r.p-1]), true
	case TagInteger:
		if r.left() < 5 {
			return 0, false
		}
		r.p += 5
		return int64(int32(binary.BigEndian.Uint32(r.b[r.p-4:]))), true
	case TagSmallBig:
		n := int(r.b[r.p+1])
		if n > 8 || r.left() < 3+n || r.b[r.p+2] > 1 {
			return 0, false
		}
		x, ok := int64FromDigits(r.b[r.p+3:r.p+3+n], r.b[r.p+2] == 1)
		r.p += 3 + n
		return x, ok
	}
	return 0, false
}

// tags appends the spans of the tag list's keys and values to spans and says how many tags there are.
// tail reads what metrics and alerts end with: the tags, the timestamp and the source, and
// nothing after them. It returns the spans with the tags' and the source's added, the number
// of tags and the timestamp.
func (r *recReader) tail(spans []span) ([]span, int, int64, bool) {
	spans, ntags, ok := r.tags(spans)
	if !ok {
		return spans, 0, 0, false
	}
	ts, ok := r.integer()
	if !ok {
		return spans, 0, 0, false
	}
	if spans, ok = r.binary(spans); !ok || r.p != len(r.b) {
		return spans, 0, 0, false
	}
	return spans, ntags, ts, true
}

func (r *recReader) tags(spans []span) ([]span, int, bool) {
	if r.left() < 1 {
		return spans, 0, false
	}
	if r.b[r.p] == TagNil {
		r.p++
		return spans, 0, true
	}
	if r.left() < 5 || r.b[r.p] != TagList {
		return spans, 0, false
	}
	n := binary.BigEndian.Uint32(r.b[r.p+1:])
	r.p += 5
	if n == 0 || n > maxFastTags {
		return spans, 0, false
	}
	var ok bool
	for range n {
		if r.left() < 2 || r.b[r.p] != TagSmallTuple || r.b[r.p+1] != 2 {
			return spans, 0, false
		}
		r.p += 2
		if spans, ok = r.binary(spans); !ok {
			return spans, 0, false
		}
		if spans, ok = r.binary(spans); !ok {
			return spans, 0, false
		}
	}
	if r.left() < 1 || r.b[r.p] != TagNil {
		return spans, 0, false
	}
	r.p++
	return spans, int(n), true
}

// head checks the version byte, a 7-tuple and its record atom.
func (r *recReader) head(record string) bool {
	if len(r.b) < 3 || r.b[0] != TagVersion || r.b[1] != TagSmallTuple || r.b[2] != 7 {
		return false
	}
	r.p = 3
	a, ok := r.atom()
	return ok && string(a) == record
}

// joinSpans copies the spans' bytes, in order, into one string that all the record's strings share.
// Allocating exactly their length (not the whole input) keeps the garbage collector's work small.
func joinSpans(data []byte, spans []span) string {
	total := 0
	for _, sp := range spans {
		total += sp.n
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, sp := range spans {
		sb.Write(data[sp.off : sp.off+sp.n])
	}
	return sb.String()
}

// fillTags sets n tags whose keys and values are the strings of spans[2i] and spans[2i+1], which start
// at offset at of all and follow each other; it returns the offset after them.
func fillTags(dst []Tag, n int, all string, at int, spans []span) ([]Tag, int) {
	if n == 0 {
		return dst[:0], at
	}
	if cap(dst) < n {
		dst = make([]Tag, n)
	}
	dst = dst[:n]
	for i := range dst {
		k, v := spans[2*i].n, spans[2*i+1].n
		dst[i] = Tag{Key: all[at : at+k], Value: all[at+k : at+k+v]}
		at += k + v
	}
	return dst, at
}

func decodeMetricFast(data []byte, m *Metric) bool {
	var spanBuf [2 + 2*maxFastTags]span
	r := recReader{b: data}
	if !r.head("metric") {
		return false
	}
	spans, ok := r.binary(spanBuf[:0])
	if !ok {
		return false
	}
	kindName, ok := r.atom()
	kind := metricKindOf(string(kindName))
	if !ok || kind == 0 {
		return false
	}
	value, ok := r.float()
	if !ok {
		return false
	}
	spans, ntags, ts, ok := r.tail(spans)
	if !ok {
		return false
	}
	// spans: name, the tags' keys and values, source.
	all := joinSpans(data, spans)
	at := spans[0].n
	m.Name = all[:at]
	m.Kind = kind
	m.Value = value
	m.Tags, at = fillTags(m.Tags, ntags, all, at, spans[1:])
	m.TimestampMs = ts
	m.Source = all[at:]
	return true
}

func decodeAlertFast(data []byte, a *Alert) bool {
	var spanBuf [3 + 2*maxFastTags]span
	r := recReader{b: data}
	if !r.head("alert") {
		return false
	}
	spans, ok := r.binary(spanBuf[:0])
	if !ok {
		return false
	}
	sevName, ok := r.atom()
	sev := severityOf(string(sevName))
	if !ok || sev == 0 {
		return false
	}
	if spans, ok = r.binary(spans); !ok {
		return false
	}
	spans, ntags, ts, ok := r.tail(spans)
	if !ok {
		return false
	}
	// spans: name, message, the tags' keys and values, source.
	all := joinSpans(data, spans)
	at := spans[0].n
	a.Name = all[:at]
	a.Severity = sev
	a.Message = all[at : at+spans[1].n]
	a.Tags, at = fillTags(a.Tags, ntags, all, at+spans[1].n, spans[2:])
	a.TimestampMs = ts
	a.Source = all[at:]
	return true
}

func metricKindOf(name string) MetricKind {
	for k, n := range metricKindNames {
		if n != "" && n == name {
			return MetricKind(k)
		}
	}
	return 0
}

func severityOf(name string) Severity {
	for s, n := range severityNames {
		if n != "" && n == name {
			return Severity(s)
		}
	}
	return 0
}

// The slow path: the shape of a decoded term.

func notRecord(record, field string) error {
	return fmt.Errorf("%w: %s: %s", ErrNotRecord, record, field)
}

func recordTuple(v any, record string) (Tuple, error) {
	t, ok := v.(Tuple)
	if !ok || len(t) != 7 {
		return nil, notRecord(record, "not a 7-tuple")
	}
	if a, ok := t[0].(Atom); !ok || string(a) != record {
		return nil, notRecord(record, "first element is not the atom "+record)
	}
	return t, nil
}

func binaryField(v any, record, field string) (string, error) {
	b, ok := v.([]byte)
	if !ok {
		return "", notRecord(record, field+" is not a binary")
	}
	return string(b), nil
}

func tagsField(v any, record string, dst []Tag) ([]Tag, error) {
	l, ok := v.(List)
	if !ok {
		return nil, notRecord(record, "tags is not a proper list")
	}
	for _, el := range l {
		t, ok := el.(Tuple)
		if !ok || len(t) != 2 {
			return nil, notRecord(record, "a tag is not a 2-tuple")
		}
		if _, ok := t[0].([]byte); !ok {
			return nil, notRecord(record, "a tag key is not a binary")
		}
		if _, ok := t[1].([]byte); !ok {
			return nil, notRecord(record, "a tag value is not a binary")
		}
	}
	if len(l) == 0 {
		return dst[:0], nil
	}
	if cap(dst) < len(l) {
		dst = make([]Tag, 0, len(l))
	}
	dst = dst[:0]
	for _, el := range l {
		t := el.(Tuple)
		dst = append(dst, Tag{Key: string(t[0].([]byte)), Value: string(t[1].([]byte))})
	}
	return dst, nil
}

func metricFromTerm(v any, m *Metric) error {
	t, err := recordTuple(v, "metric")
	if err != nil {
		return err
	}
	var out Metric
	if out.Name, err = binaryField(t[1], "metric", "name"); err != nil {
		return err
	}
	kind, _ := t[2].(Atom)
	if out.Kind = metricKindOf(string(kind)); out.Kind == 0 {
		return notRecord("metric", "kind is not counter, gauge or histogram")
	}
	var ok bool
	if out.Value, ok = t[3].(float64); !ok {
		return notRecord("metric", "value is not a float")
	}
	if out.TimestampMs, ok = t[5].(int64); !ok {
		return notRecord("metric", "timestamp is not a 64-bit integer")
	}
	if out.Source, err = binaryField(t[6], "metric", "source"); err != nil {
		return err
	}
	// Tags last: tagsField writes into m.Tags' array, which must stay untouched on error.
	if out.Tags, err = tagsField(t[4], "metric", m.Tags); err != nil {
		return err
	}
	*m = out
	return nil
}

func alertFromTerm(v any, a *Alert) error {
	t, err := recordTuple(v, "alert")
	if err != nil {
		return err
	}
	var out Alert
	if out.Name, err = binaryField(t[1], "alert", "name"); err != nil {
		return err
	}
	sev, _ := t[2].(Atom)
	if out.Severity = severityOf(string(sev)); out.Severity == 0 {
		return notRecord("alert", "severity is not info, warning or critical")
	}
	if out.Message, err = binaryField(t[3], "alert", "message"); err != nil {
		return err
	}
	var ok bool
	if out.TimestampMs, ok = t[5].(int64); !ok {
		return notRecord("alert", "timestamp is not a 64-bit integer")
	}
	if out.Source, err = binaryField(t[6], "alert", "source"); err != nil {
		return err
	}
	if out.Tags, err = tagsField(t[4], "alert", a.Tags); err != nil {
		return err
	}
	*a = out
	return nil
}
