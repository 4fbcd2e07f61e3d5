package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/pharos-node/pharos-node/etf"
)

// eachRecord decodes the records of body (one object, or an array of values) in order, calling f
// with each record's index and its decoding, or the record's own error. text is body as a string
// (the records' strings are substrings of it); tags is where their tags are appended, returned
// extended. The error eachRecord returns is the body's as a whole, as split's (ErrMalformedJSON,
// ErrTooManyRecords): f has then been called for some records, whose results the caller must drop
// (nothing of such a body is delivered).
//
// A body that is valid UTF-8, nearly every one, is read in one pass: each record is decoded as the
// syntax is checked, a syntax error anywhere failing the body. Another body takes split's two
// passes, so that its records with invalid UTF-8 are refused one by one as before.
func (r *jsonReader) eachRecord(body []byte, text string, maxRecords int, alerts bool, def recordDefaults,
	tags []etf.Tag, f func(i int, rec *record, err error)) ([]etf.Tag, error) {
	var rec record
	if !utf8.Valid(body) {
		spans, err := r.split(body, maxRecords)
		if err != nil {
			return tags, err
		}
		r.reset(body, text)
		if r.dec.PeekKind() == jsontext.KindBeginArray {
			_, _ = r.dec.ReadToken() // split checked the syntax
		}
		for i, sp := range spans {
			var err error
			tags, err = r.decodeRecord(alerts, def, &rec, tags, body[sp.start:sp.end])
			f(i, &rec, err)
		}
		return tags, nil
	}

	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return tags, fmt.Errorf("%w: empty body", ErrMalformedJSON)
	}
	r.reset(body, text)
	r.syntaxErr = nil
	switch trimmed[0] {
	case '{':
		var err error
		tags, err = r.decodeRecord(alerts, def, &rec, tags, nil)
		if r.syntaxErr != nil {
			return tags, fmt.Errorf("%w: %w", ErrMalformedJSON, r.syntaxErr)
		}
		f(0, &rec, err)
	case '[':
		if _, err := r.dec.ReadToken(); err != nil {
			return tags, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
		for i := 0; ; i++ {
			switch r.dec.PeekKind() {
			case jsontext.KindEndArray:
			case jsontext.KindInvalid:
				_, err := r.dec.ReadToken()
				return tags, fmt.Errorf("%w: element %d: %w", ErrMalformedJSON, i, err)
			default:
				if i >= maxRecords {
					return tags, fmt.Errorf("%w: more than %d", ErrTooManyRecords, maxRecords)
				}
				var err error
				start := len(tags)
				tags, err = r.decodeRecord(alerts, def, &rec, tags, nil)
				if r.syntaxErr != nil {
					return tags, fmt.Errorf("%w: element %d: %w", ErrMalformedJSON, i, r.syntaxErr)
				}
				if err != nil {
					tags = tags[:start]
				}
				f(i, &rec, err)
				continue
			}
			break
		}
		if _, err := r.dec.ReadToken(); err != nil { // the closing bracket
			return tags, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
	default:
		return tags, fmt.Errorf("%w: want an object or an array, got %q", ErrMalformedJSON, trimmed[0])
	}
	if _, err := r.dec.ReadToken(); err != io.EOF {
		return tags, fmt.Errorf("%w: data after the top-level value", ErrMalformedJSON)
	}
	return tags, nil
}

// isSyntaxError reports whether err comes from the tokenizer: the body is not JSON.
func isSyntaxError(err error) bool {
	var serr *jsontext.SyntacticError
	return errors.As(err, &serr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// split checks that body is one JSON object or one JSON array of values, and returns the extent of
// each record (the one object, or each element of the array). Elements are not checked here; a
// body that is not well-formed JSON is ErrMalformedJSON, one with more than maxRecords elements
// ErrTooManyRecords. The spans are valid until the next call.
func (r *jsonReader) split(body []byte, maxRecords int) ([]span, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformedJSON)
	}
	r.reset(body, "")
	defer r.release()
	spans := r.spans[:0]
	switch trimmed[0] {
	case '{':
		v, err := r.dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
		end := int(r.dec.InputOffset())
		spans = append(spans, span{end - len(v), end})
	case '[':
		if _, err := r.dec.ReadToken(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
		for r.dec.PeekKind() != jsontext.KindEndArray {
			if len(spans) >= maxRecords {
				return nil, fmt.Errorf("%w: more than %d", ErrTooManyRecords, maxRecords)
			}
			v, err := r.dec.ReadValue()
			if err != nil {
				return nil, fmt.Errorf("%w: element %d: %w", ErrMalformedJSON, len(spans), err)
			}
			end := int(r.dec.InputOffset())
			spans = append(spans, span{end - len(v), end})
		}
		if _, err := r.dec.ReadToken(); err != nil { // the closing bracket
			return nil, fmt.Errorf("%w: %w", ErrMalformedJSON, err)
		}
	default:
		return nil, fmt.Errorf("%w: want an object or an array, got %q", ErrMalformedJSON, trimmed[0])
	}
	if _, err := r.dec.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the top-level value", ErrMalformedJSON)
	}
	r.spans = spans
	return spans, nil
}

// splitBody returns the raw JSON text of each record of body (see jsonReader.split).
func splitBody(body []byte, maxRecords int) ([][]byte, error) {
	spans, err := newJSONReader().split(body, maxRecords)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, s := range spans {
		out = append(out, body[s.start:s.end])
	}
	return out, nil
}
