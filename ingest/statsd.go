package ingest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/pharos-node/pharos-node/etf"
)

// The StatsD line format, with DogStatsD's tags and timestamp:
//
//	name:value|type[|@rate][|#key:value,key2:value2,flag][|Tseconds][|c:container]
//
//	type  kind            value
//	c     etf.Counter     value / rate (a sampled counter is scaled back up); may be negative
//	g     etf.Gauge       the absolute value; with a leading + or -, a change of the last value
//	ms    etf.Histogram   one observation, in milliseconds as sent; the rate is ignored
//	h, d  etf.Histogram   one observation; the rate is ignored
//	s     etf.Gauge       a member of a set; the listener counts distinct members per flush
//
// Gauge changes and sets need the listener's state (StatsD.HandlePacket); ParseStatsDLine, which
// has none, refuses them with ErrGaugeDelta and ErrStatsDType. DogStatsD events (_e{...}) and
// service checks (_sc|...) are refused with ErrStatsDType. The value is a plain decimal number
// (digits, sign, point, exponent; no NaN, Inf, hex or underscores), a set's any non-empty text; a
// rate is a number in (0, 1]. A tag without a colon is a tag with an empty value; a tag's value
// may hold colons; its key may not be empty. Tseconds is a Unix time in seconds (the record gets
// it in ms); the container id (c:) is accepted and ignored. Each section may appear once. A line
// ends at \n; one trailing \r and surrounding spaces are ignored.

// lineType is what a StatsD line asks of the listener.
type lineType uint8

const (
	lineRecord lineType = iota // a record as it stands: counter, absolute gauge, histogram
	lineDelta                  // a gauge change: Value is added to the series' last value
	lineSet                    // a set member: member is counted once per flush
)

// statsdLine is one parsed line.
type statsdLine struct {
	m      etf.Metric // for a set: Name, Tags, TimestampMs; Kind Gauge
	typ    lineType
	member string // a set's member
}

// ParseStatsDLine parses one StatsD line (without its newline) into a Metric. The Metric has no
// Source and, unless the line carries |T, no TimestampMs: the listener sets them. It does not apply
// etf's Validate (the listener does), and it never panics: every malformed line is a *LineError
// wrapping ErrStatsDSyntax, ErrStatsDType, ErrSampleRate or ErrGaugeDelta. Gauge changes ("+3",
// "-3") and set members (|s) are refused (ErrGaugeDelta, ErrStatsDType): they are not records
// without the state of a listener, which takes them.
func ParseStatsDLine(line []byte) (etf.Metric, error) {
	l, _, err := parseStatsDLine(line, false, nil)
	if err == nil {
		switch l.typ {
		case lineDelta:
			err = lineError(line, fmt.Errorf("%w: %q", ErrGaugeDelta, valueText(line)))
		case lineSet:
			err = lineError(line, fmt.Errorf("%w: %q", ErrStatsDType, "s"))
		}
	}
	if err != nil {
		return etf.Metric{}, err
	}
	return l.m, nil
}

// valueText is the value of a line that parsed, for messages.
func valueText(line []byte) []byte {
	_, rest, _ := bytes.Cut(bytes.TrimSpace(line), []byte{':'})
	v, _, _ := bytes.Cut(rest, []byte{'|'})
	return v
}

// lineError wraps err with line, cut to 128 bytes.
func lineError(line []byte, err error) error {
	const maxQuoted = 128
	q := line
	if len(q) > maxQuoted {
		q = q[:maxQuoted]
	}
	return &LineError{Line: string(q), Err: err}
}

// parseStatsDLine parses line, appending its tags to tags (the caller's buffer) and returning it
// extended. With borrow, the strings of the result are the line's own bytes (valid while the line
// is), else copies.
func parseStatsDLine(line []byte, borrow bool, tags []etf.Tag) (statsdLine, []etf.Tag, error) {
	l, tags, err := parseLine(bytes.TrimSpace(line), borrow, tags)
	if err != nil {
		return statsdLine{}, tags, lineError(line, err)
	}
	return l, tags, nil
}

// str makes a string of b: b's own bytes when borrowing.
func str(b []byte, borrow bool) string {
	if borrow {
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return string(b)
}

func parseLine(line []byte, borrow bool, tags []etf.Tag) (statsdLine, []etf.Tag, error) {
	var l statsdLine
	if bytes.HasPrefix(line, []byte("_e{")) || bytes.HasPrefix(line, []byte("_sc|")) {
		return l, tags, fmt.Errorf("%w: DogStatsD events and service checks", ErrStatsDType)
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return l, tags, fmt.Errorf("%w: no ':' after the name", ErrStatsDSyntax)
	}
	name, rest := line[:colon], line[colon+1:]
	if len(name) == 0 {
		return l, tags, fmt.Errorf("%w: empty name", ErrStatsDSyntax)
	}
	if bytes.ContainsAny(name, "|#@") {
		return l, tags, fmt.Errorf("%w: '|', '#' or '@' in the name", ErrStatsDSyntax)
	}
	bar := bytes.IndexByte(rest, '|')
	if bar < 0 {
		return l, tags, fmt.Errorf("%w: no '|type' after the value", ErrStatsDSyntax)
	}
	valueText, rest := rest[:bar], rest[bar+1:]
	typ, rest, more := bytes.Cut(rest, []byte{'|'})

	m := &l.m
	switch string(typ) {
	case "c":
		m.Kind = etf.Counter
	case "g":
		m.Kind = etf.Gauge
		if len(valueText) > 0 && (valueText[0] == '+' || valueText[0] == '-') {
			l.typ = lineDelta
		}
	case "ms", "h", "d":
		m.Kind = etf.Histogram
	case "s":
		m.Kind, l.typ = etf.Gauge, lineSet
	case "":
		return l, tags, fmt.Errorf("%w: empty type", ErrStatsDSyntax)
	default:
		return l, tags, fmt.Errorf("%w: %q", ErrStatsDType, typ)
	}
	var value float64
	if l.typ == lineSet {
		if len(valueText) == 0 {
			return l, tags, fmt.Errorf("%w: empty set member", ErrStatsDSyntax)
		}
	} else {
		var err error
		if value, err = parseStatsDNumber(valueText); err != nil {
			return l, tags, fmt.Errorf("%w: value: %w", ErrStatsDSyntax, err)
		}
	}

	rate := 1.0
	var seenRate, seenTags, seenTime, seenContainer bool
	for more {
		var sec []byte
		sec, rest, more = bytes.Cut(rest, []byte{'|'})
		if len(sec) == 0 {
			return l, tags, fmt.Errorf("%w: empty section", ErrStatsDSyntax)
		}
		switch {
		case sec[0] == '@' && !seenRate:
			seenRate = true
			r, err := parseStatsDNumber(sec[1:])
			if err != nil || !(r > 0 && r <= 1) {
				return l, tags, fmt.Errorf("%w: %q", ErrSampleRate, sec[1:])
			}
			rate = r
		case sec[0] == '#' && !seenTags:
			seenTags = true
			start := len(tags)
			var err error
			if tags, err = parseStatsDTags(sec[1:], borrow, tags); err != nil {
				return l, tags[:start], err
			}
			m.Tags = tags[start:len(tags):len(tags)]
		case sec[0] == 'T' && !seenTime:
			seenTime = true
			seconds, err := strconv.ParseInt(string(sec[1:]), 10, 64)
			if err != nil || seconds < 0 || seconds > math.MaxInt64/1000 {
				return l, tags, fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrStatsDSyntax, sec[1:])
			}
			m.TimestampMs = seconds * 1000
		case bytes.HasPrefix(sec, []byte("c:")) && !seenContainer:
			seenContainer = true
		default:
			return l, tags, fmt.Errorf("%w: unknown or repeated section %q", ErrStatsDSyntax, sec)
		}
	}
	if m.Kind == etf.Counter {
		value /= rate
	}
	if math.IsInf(value, 0) {
		return l, tags, fmt.Errorf("%w: value %q scaled by rate %v overflows", ErrStatsDSyntax, valueText, rate)
	}
	m.Value = value
	m.Name = str(name, borrow)
	if l.typ == lineSet {
		l.member = str(valueText, borrow)
	}
	return l, tags, nil
}

// parseStatsDNumber accepts plain decimal numbers only: strconv.ParseFloat alone would also take
// "NaN", "Inf", hex floats and underscores.
func parseStatsDNumber(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("empty number")
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, fmt.Errorf("%q is not a decimal number", b)
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal number in float64 range", b)
	}
	return v, nil
}

// parseStatsDTags parses key:value,key2:value2,flag, appending to tags.
func parseStatsDTags(b []byte, borrow bool, tags []etf.Tag) ([]etf.Tag, error) {
	if len(b) == 0 {
		return tags, fmt.Errorf("%w: '#' without tags", ErrStatsDSyntax)
	}
	for more := true; more; {
		var t []byte
		t, b, more = bytes.Cut(b, []byte{','})
		if len(t) == 0 {
			return tags, fmt.Errorf("%w: empty tag", ErrStatsDSyntax)
		}
		key, value, _ := bytes.Cut(t, []byte{':'})
		if len(key) == 0 {
			return tags, fmt.Errorf("%w: tag %q without a key", ErrStatsDSyntax, t)
		}
		tags = append(tags, etf.Tag{Key: str(key, borrow), Value: str(value, borrow)})
	}
	return tags, nil
}
