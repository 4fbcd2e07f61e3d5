package etf

import (
	"encoding/binary"
	"math"
	"slices"
)

// The record encoders write the bytes of term_to_binary(Record, [{minor_version, 2}]) (the default from
// OTP 26): atoms as SMALL_ATOM_UTF8_EXT, the value as NEW_FLOAT_EXT, the timestamp in the smallest integer
// form, [] as NIL_EXT. The constant parts are precomputed, nothing is reflected on, and appending into a
// buffer with room allocates nothing.

var (
	metricHead = []byte{TagVersion, TagSmallTuple, 7, TagSmallAtomUTF8, 6, 'm', 'e', 't', 'r', 'i', 'c'}
	alertHead  = []byte{TagVersion, TagSmallTuple, 7, TagSmallAtomUTF8, 5, 'a', 'l', 'e', 'r', 't'}
)

// atomBytes is the SMALL_ATOM_UTF8_EXT encoding of a short ASCII atom.
func atomBytes(name string) []byte {
	return append([]byte{TagSmallAtomUTF8, byte(len(name))}, name...)
}

var (
	kindAtoms     = [...][]byte{Counter: atomBytes("counter"), Gauge: atomBytes("gauge"), Histogram: atomBytes("histogram")}
	severityAtoms = [...][]byte{Info: atomBytes("info"), Warning: atomBytes("warning"), Critical: atomBytes("critical")}
)

// AppendMetric appends term_to_binary(m), with the version byte, to dst. It refuses an invalid Kind
// (ErrInvalidKind) and a NaN or infinite Value (ErrNonFinite), the two faults that would put a bad term on
// the wire; the other rules are Validate's, which the caller runs once when the record enters the node.
// With enough capacity in dst it allocates nothing. On error dst is returned unchanged.
func AppendMetric(dst []byte, m *Metric) ([]byte, error) {
	if !m.Kind.valid() {
		return dst, &ValidationError{"metric", "kind", ErrInvalidKind}
	}
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		return dst, &ValidationError{"metric", "value", ErrNonFinite}
	}
	size := MetricSize(m)
	if size < 0 {
		return dst, &ValidationError{"metric", "", ErrTooLarge}
	}
	kind := kindAtoms[m.Kind]
	dst = slices.Grow(dst, size)
	dst = append(dst, metricHead...)
	dst = appendBinary(dst, m.Name)
	dst = append(dst, kind...)
	dst = binary.BigEndian.AppendUint64(append(dst, TagNewFloat), math.Float64bits(m.Value))
	dst = appendTags(dst, m.Tags)
	dst = appendInt(dst, m.TimestampMs)
	return appendBinary(dst, m.Source), nil
}

// AppendAlert appends term_to_binary(a), with the version byte, to dst. It refuses an invalid Severity
// (ErrInvalidSeverity); the other rules are Validate's. With enough capacity in dst it allocates nothing.
func AppendAlert(dst []byte, a *Alert) ([]byte, error) {
	if !a.Severity.valid() {
		return dst, &ValidationError{"alert", "severity", ErrInvalidSeverity}
	}
	size := AlertSize(a)
	if size < 0 {
		return dst, &ValidationError{"alert", "", ErrTooLarge}
	}
	sev := severityAtoms[a.Severity]
	dst = slices.Grow(dst, size)
	dst = append(dst, alertHead...)
	dst = appendBinary(dst, a.Name)
	dst = append(dst, sev...)
	dst = appendBinary(dst, a.Message)
	dst = appendTags(dst, a.Tags)
	dst = appendInt(dst, a.TimestampMs)
	return appendBinary(dst, a.Source), nil
}

// MetricSize returns the most bytes AppendMetric appends for m (the timestamp counted at its
// largest encoding): a buffer with that much room takes the record without growing. It is -1
// for a metric whose binaries or tag list overflow their 32-bit length fields.
func MetricSize(m *Metric) int {
	kind := 2 + len("histogram") // the longest kind; AppendMetric refuses any other
	if m.Kind.valid() {
		kind = len(kindAtoms[m.Kind])
	}
	size, ok := recordSize(len(metricHead)+kind+9, m.Name, m.Tags, m.Source, "")
	if !ok {
		return -1
	}
	return size
}

// AlertSize is MetricSize for AppendAlert.
func AlertSize(a *Alert) int {
	sev := 2 + len("critical") // the longest severity; AppendAlert refuses any other
	if a.Severity.valid() {
		sev = len(severityAtoms[a.Severity])
	}
	size, ok := recordSize(len(alertHead)+sev+5, a.Name, a.Tags, a.Source, a.Message)
	if !ok {
		return -1
	}
	return size
}

// recordSize returns the encoded size of a record (at most: the timestamp is counted at its largest)
// and whether every binary and the tag list fit their 32-bit length fields.
func recordSize(fixed int, name string, tags []Tag, source, message string) (int, bool) {
	const binHead = 5
	const maxTimestamp = 11 // SMALL_BIG_EXT of 8 digits
	size := uint64(fixed) + binHead + uint64(len(name)) + binHead + uint64(len(source)) + maxTimestamp + 1
	ok := uint64(len(name)) <= math.MaxUint32 && uint64(len(source)) <= math.MaxUint32 &&
		uint64(len(message)) <= math.MaxUint32 && uint64(len(tags)) <= math.MaxUint32
	size += uint64(len(message)) // its BINARY_EXT head is in fixed
	if len(tags) > 0 {
		size += 5
		for i := range tags {
			k, v := uint64(len(tags[i].Key)), uint64(len(tags[i].Value))
			ok = ok && k <= math.MaxUint32 && v <= math.MaxUint32
			size += 2 + binHead + k + binHead + v
		}
	}
	if size > math.MaxInt {
		return 0, false
	}
	return int(size), ok
}

func appendTags(dst []byte, tags []Tag) []byte {
	if len(tags) == 0 {
		return append(dst, TagNil)
	}
	dst = binary.BigEndian.AppendUint32(append(dst, TagList), uint32(len(tags)))
	for i := range tags {
		dst = append(dst, TagSmallTuple, 2)
		dst = appendBinary(dst, tags[i].Key)
		dst = appendBinary(dst, tags[i].Value)
	}
	return append(dst, TagNil)
}
