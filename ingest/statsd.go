package ingest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"github.com/pharos-node/pharos-node/etf"
)

// The StatsD line format, with DogStatsD's tags and timestamp:
//
//	name:value|type[|@rate][|#key:value,key2:value2,flag][|Tseconds][|c:container]
//
//	type  kind            value
//	c     etf.Counter     value / rate (a sampled counter is scaled back up); may be negative
//	g     etf.Gauge       the absolute value; a leading + or - (a StatsD delta) is refused
//	ms    etf.Histogram   one observation, in milliseconds as sent; the rate is ignored
//	h, d  etf.Histogram   one observation; the rate is ignored
//
// Sets (s), DogStatsD events (_e{...}) and service checks (_sc|...) are refused with ErrStatsDType.
// The value is a plain decimal number (digits, sign, point, exponent; no NaN, Inf, hex or
// underscores); a rate is a number in (0, 1]. A tag without a colon is a tag with an empty value; a
// tag's value may hold colons; its key may not be empty. Tseconds is a Unix time in seconds (the record gets it in ms); the
// container id (c:) is accepted and ignored. Each section may appear once. A line ends at \n; one
// trailing \r and surrounding spaces are ignored.

// ParseStatsDLine parses one StatsD line (without its newline) into a Metric. The Metric has no
// Source and, unless the line carries |T, no TimestampMs: the listener sets them. It does not apply
// etf's Validate (the listener does), and it never panics: every malformed line is a *LineError
// wrapping ErrStatsDSyntax, ErrStatsDType, ErrSampleRate or ErrGaugeDelta.
func ParseStatsDLine(line []byte) (etf.Metric, error) {
	m, err := parseStatsDLine(bytes.TrimSpace(line))
	if err != nil {
		const maxQuoted = 128
		q := line
		if len(q) > maxQuoted {
			q = q[:maxQuoted]
		}
		return etf.Metric{}, &LineError{Line: string(q), Err: err}
	}
	return m, nil
}

func parseStatsDLine(line []byte) (etf.Metric, error) {
	if bytes.HasPrefix(line, []byte("_e{")) || bytes.HasPrefix(line, []byte("_sc|")) {
		return etf.Metric{}, fmt.Errorf("%w: DogStatsD events and service checks", ErrStatsDType)
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return etf.Metric{}, fmt.Errorf("%w: no ':' after the name", ErrStatsDSyntax)
	}
	name, rest := line[:colon], line[colon+1:]
	if len(name) == 0 {
		return etf.Metric{}, fmt.Errorf("%w: empty name", ErrStatsDSyntax)
	}
	if bytes.ContainsAny(name, "|#@") {
		return etf.Metric{}, fmt.Errorf("%w: '|', '#' or '@' in the name", ErrStatsDSyntax)
	}
	sections := bytes.Split(rest, []byte{'|'})
	if len(sections) < 2 {
		return etf.Metric{}, fmt.Errorf("%w: no '|type' after the value", ErrStatsDSyntax)
	}
	valueText, typ := sections[0], string(sections[1])

	m := etf.Metric{Name: string(name)}
	switch typ {
	case "c":
		m.Kind = etf.Counter
	case "g":
		m.Kind = etf.Gauge
	case "ms", "h", "d":
		m.Kind = etf.Histogram
	case "":
		return etf.Metric{}, fmt.Errorf("%w: empty type", ErrStatsDSyntax)
	default:
		return etf.Metric{}, fmt.Errorf("%w: %q", ErrStatsDType, typ)
	}
	if m.Kind == etf.Gauge && len(valueText) > 0 && (valueText[0] == '+' || valueText[0] == '-') {
		return etf.Metric{}, fmt.Errorf("%w: %q", ErrGaugeDelta, valueText)
	}
	value, err := parseStatsDNumber(valueText)
	if err != nil {
		return etf.Metric{}, fmt.Errorf("%w: value: %w", ErrStatsDSyntax, err)
	}

	rate := 1.0
	var seenRate, seenTags, seenTime, seenContainer bool
	for _, sec := range sections[2:] {
		if len(sec) == 0 {
			return etf.Metric{}, fmt.Errorf("%w: empty section", ErrStatsDSyntax)
		}
		switch {
		case sec[0] == '@' && !seenRate:
			seenRate = true
			r, err := parseStatsDNumber(sec[1:])
			if err != nil || !(r > 0 && r <= 1) {
				return etf.Metric{}, fmt.Errorf("%w: %q", ErrSampleRate, sec[1:])
			}
			rate = r
		case sec[0] == '#' && !seenTags:
			seenTags = true
			tags, err := parseStatsDTags(sec[1:])
			if err != nil {
				return etf.Metric{}, err
			}
			m.Tags = tags
		case sec[0] == 'T' && !seenTime:
			seenTime = true
			seconds, err := strconv.ParseInt(string(sec[1:]), 10, 64)
			if err != nil || seconds < 0 || seconds > math.MaxInt64/1000 {
				return etf.Metric{}, fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrStatsDSyntax, sec[1:])
			}
			m.TimestampMs = seconds * 1000
		case bytes.HasPrefix(sec, []byte("c:")) && !seenContainer:
			seenContainer = true
		default:
			return etf.Metric{}, fmt.Errorf("%w: unknown or repeated section %q", ErrStatsDSyntax, sec)
		}
	}
	if m.Kind == etf.Counter {
		value /= rate
	}
	if math.IsInf(value, 0) {
		return etf.Metric{}, fmt.Errorf("%w: value %q scaled by rate %v overflows", ErrStatsDSyntax, valueText, rate)
	}
	m.Value = value
	return m, nil
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

// parseStatsDTags parses key:value,key2:value2,flag.
func parseStatsDTags(b []byte) ([]etf.Tag, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: '#' without tags", ErrStatsDSyntax)
	}
	n := bytes.Count(b, []byte{','}) + 1
	tags := make([]etf.Tag, 0, n)
	for t := range bytes.SplitSeq(b, []byte{','}) {
		if len(t) == 0 {
			return nil, fmt.Errorf("%w: empty tag", ErrStatsDSyntax)
		}
		key, value, _ := bytes.Cut(t, []byte{':'})
		if len(key) == 0 {
			return nil, fmt.Errorf("%w: tag %q without a key", ErrStatsDSyntax, t)
		}
		tags = append(tags, etf.Tag{Key: string(key), Value: string(value)})
	}
	return tags, nil
}
