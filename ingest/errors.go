package ingest

import (
	"errors"
	"fmt"

	"github.com/pharos-node/pharos-node/etf"
)

// Sentinel errors. Callers and tests branch on them with errors.Is; the package wraps them with the
// position (*FieldError, *LineError, *ScrapeError) or with context via %w.
var (
	// ErrSinkFull is what a Sink wraps when it cannot take a record now (its queue is full). Sources
	// report it per record; the HTTP handler answers 503 when it is the only kind of refusal.
	ErrSinkFull = errors.New("ingest: sink full")
	// ErrSinkOverflow is what a Sink wraps when its bounded buffer is full and its policy is to
	// refuse new records rather than drop old ones (the daemon's buffer.overflow refuse): a
	// client should retry later. It wraps ErrSinkFull; the HTTP handler answers 429, not 503.
	ErrSinkOverflow = fmt.Errorf("%w: buffer full, retry later", ErrSinkFull)

	// ErrBodyTooLarge: an HTTP request body is longer than HTTPOptions.MaxBodyBytes (status 413).
	ErrBodyTooLarge = errors.New("ingest: request body too large")
	// ErrTooManyRecords: an HTTP request holds more than HTTPOptions.MaxRecords records (status 413).
	ErrTooManyRecords = errors.New("ingest: too many records in one request")
	// ErrMalformedJSON: the body is not one JSON object or one JSON array of values (status 400;
	// nothing in the request is delivered).
	ErrMalformedJSON = errors.New("ingest: malformed JSON body")
	// ErrMediaType: the request's Content-Type is set and is not JSON (status 415).
	ErrMediaType = errors.New("ingest: unsupported media type")
	// ErrInflightBudget: the request's body would take the bodies held at once over
	// HTTPOptions.MaxInflightBytes (status 429 with Retry-After; the body is not read).
	ErrInflightBudget = errors.New("ingest: too many request bytes in flight")
	// ErrBodyTimeout: the request's body did not arrive within HTTPOptions.BodyTimeout (status 408).
	ErrBodyTimeout = errors.New("ingest: request body too slow")

	// ErrNotObject: an element of the array is not a JSON object.
	ErrNotObject = errors.New("ingest: record is not a JSON object")
	// ErrMissingField: a required field (name, kind, value; name, severity) is absent or null.
	ErrMissingField = errors.New("ingest: missing field")
	// ErrUnknownField: the record has a field WIRE.md does not define (a typo, most of the time).
	ErrUnknownField = errors.New("ingest: unknown field")
	// ErrDuplicateField: the record has the same field twice.
	ErrDuplicateField = errors.New("ingest: duplicate field")
	// ErrWrongType: a field has the wrong JSON type (a string where a number belongs, ...).
	ErrWrongType = errors.New("ingest: wrong JSON type")
	// ErrUnknownEnum: kind or severity is not one of the names WIRE.md lists.
	ErrUnknownEnum = errors.New("ingest: unknown enumeration value")
	// ErrOutOfRange: a number does not fit (a value beyond float64, a timestamp beyond int64 or not an
	// integer).
	ErrOutOfRange = errors.New("ingest: number out of range")
	// ErrInvalidUTF8JSON: a record's JSON text is not valid UTF-8 (encoding/json would otherwise
	// silently replace the bad bytes).
	ErrInvalidUTF8JSON = errors.New("ingest: record JSON is not valid UTF-8")

	// ErrStatsDSyntax: a StatsD line does not have the form name:value|type[|@rate][|#tags][|Tts].
	ErrStatsDSyntax = errors.New("ingest: malformed StatsD line")
	// ErrStatsDType: a StatsD type other than c, g, ms, h, d, s (events "_e" and service checks
	// "_sc" are not supported; ParseStatsDLine also refuses sets, which need a listener's state).
	ErrStatsDType = errors.New("ingest: unsupported StatsD type")
	// ErrSampleRate: a sample rate outside (0, 1].
	ErrSampleRate = errors.New("ingest: sample rate outside (0, 1]")
	// ErrGaugeDelta: a gauge value with a leading sign ("+3", "-3"), which StatsD defines as a change
	// of the previous value: ParseStatsDLine, which has no previous value, refuses it; the StatsD
	// listener applies it.
	ErrGaugeDelta = errors.New("ingest: StatsD gauge deltas are not supported")
	// ErrStatsDState: a gauge change or a set member needs one more series or member than
	// StatsDOptions.MaxSeries or MaxSetMembers allow.
	ErrStatsDState = errors.New("ingest: StatsD state full")
	// ErrPacketTooLarge: a UDP datagram longer than StatsDOptions.MaxPacketBytes; all of it is refused.
	ErrPacketTooLarge = errors.New("ingest: StatsD packet too large")

	// ErrScrapeFailed: the scrape request failed in transport (connection refused, timeout, ...).
	ErrScrapeFailed = errors.New("ingest: scrape request failed")
	// ErrExposition: a scrape response is not valid Prometheus text exposition format; none of its
	// samples is delivered.
	ErrExposition = errors.New("ingest: malformed exposition")
	// ErrHostRead: the host collector could not read or parse a /proc file.
	ErrHostRead = errors.New("ingest: reading host metrics")
	// ErrStatsDRead: reading the StatsD socket failed for another reason than its closing; Serve
	// counts it, waits a moment and reads on.
	ErrStatsDRead = errors.New("ingest: statsd: socket read failed")
	// ErrScrapeStatus: a scrape target answered with a status other than 200.
	ErrScrapeStatus = errors.New("ingest: scrape target answered an error status")
	// ErrScrapeTooLarge: a scrape response is longer than ScrapeOptions.MaxBodyBytes.
	ErrScrapeTooLarge = errors.New("ingest: scrape response too large")
	// ErrTooManySamples: a scrape yields more samples than ScrapeOptions.MaxSamples; none of them
	// is delivered.
	ErrTooManySamples = errors.New("ingest: scrape has too many samples")
)

// FieldError names the JSON field of a record that could not be decoded.
type FieldError struct {
	Field string // "name", "tags[2]", "value", ...
	Err   error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// LineError is a StatsD line that could not be parsed. Line is the line, cut to 128 bytes.
type LineError struct {
	Line string
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("statsd line %q: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// ScrapeError is a failed scrape of Target (its URL).
type ScrapeError struct {
	Target string
	Err    error
}

func (e *ScrapeError) Error() string { return fmt.Sprintf("scrape %s: %v", e.Target, e.Err) }

func (e *ScrapeError) Unwrap() error { return e.Err }

// Reasons, the values of the reason label of the refusal counters. The set is fixed, so the label's
// cardinality is bounded.
const (
	ReasonInvalid     = "invalid"     // etf's Validate refused the record (*etf.ValidationError)
	ReasonDecode      = "decode"      // a JSON record of the wrong shape (*FieldError)
	ReasonSyntax      = "syntax"      // a malformed StatsD line
	ReasonUnsupported = "unsupported" // an unsupported StatsD type
	ReasonSampleRate  = "sample_rate" // a StatsD sample rate outside (0, 1]
	ReasonGaugeDelta  = "gauge_delta" // a StatsD gauge delta (ParseStatsDLine only; the listener applies them)
	ReasonStateFull   = "state_full"  // a StatsD gauge change or set member over MaxSeries or MaxSetMembers
	ReasonSinkFull    = "sink_full"   // the Sink returned ErrSinkFull
	ReasonSinkError   = "sink_error"  // the Sink returned another error
	ReasonTooLarge    = "too_large"   // a body, packet or scrape response over its limit
	ReasonTooMany     = "too_many"    // too many records in a request or samples in a scrape
	ReasonMalformed   = "malformed"   // a body or exposition that does not parse at all
	ReasonMediaType   = "media_type"  // a request that is not JSON
	ReasonStatus      = "status"      // a scrape target's error status
	ReasonUnreachable = "unreachable" // a scrape that failed in transport (refused, timeout)
	ReasonRead        = "read"        // a /proc file the host collector could not read or parse, a failed StatsD socket read
	ReasonBusy        = "busy"        // an HTTP request over the in-flight byte budget (429)
	ReasonTimeout     = "timeout"     // an HTTP request body not received in time (408)
	ReasonOther       = "other"       // anything else
)

// reasonOf maps an error to its counter label.
func reasonOf(err error) string {
	var serr *sinkError
	if errors.As(err, &serr) {
		if errors.Is(err, ErrSinkFull) {
			return ReasonSinkFull
		}
		return ReasonSinkError
	}
	var verr *etf.ValidationError
	switch {
	case errors.As(err, &verr), errors.Is(err, etf.ErrNonFinite):
		return ReasonInvalid
	case errors.Is(err, ErrSinkFull):
		return ReasonSinkFull
	case errors.Is(err, ErrStatsDType):
		return ReasonUnsupported
	case errors.Is(err, ErrSampleRate):
		return ReasonSampleRate
	case errors.Is(err, ErrGaugeDelta):
		return ReasonGaugeDelta
	case errors.Is(err, ErrStatsDState):
		return ReasonStateFull
	case errors.Is(err, ErrStatsDSyntax):
		return ReasonSyntax
	case errors.Is(err, ErrBodyTooLarge), errors.Is(err, ErrPacketTooLarge), errors.Is(err, ErrScrapeTooLarge):
		return ReasonTooLarge
	case errors.Is(err, ErrTooManyRecords), errors.Is(err, ErrTooManySamples):
		return ReasonTooMany
	case errors.Is(err, ErrMalformedJSON), errors.Is(err, ErrExposition):
		return ReasonMalformed
	case errors.Is(err, ErrMediaType):
		return ReasonMediaType
	case errors.Is(err, ErrInflightBudget):
		return ReasonBusy
	case errors.Is(err, ErrBodyTimeout):
		return ReasonTimeout
	case errors.Is(err, ErrScrapeStatus):
		return ReasonStatus
	case errors.Is(err, ErrScrapeFailed):
		return ReasonUnreachable
	case errors.Is(err, ErrHostRead), errors.Is(err, ErrStatsDRead):
		return ReasonRead
	}
	var ferr *FieldError
	if errors.As(err, &ferr) {
		return ReasonDecode
	}
	return ReasonOther
}

// sinkError marks an error returned by the Sink, so that reasonOf tells it from a validation error.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return "sink: " + e.err.Error() }

func (e *sinkError) Unwrap() error { return e.err }
