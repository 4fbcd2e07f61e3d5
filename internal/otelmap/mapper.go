package otelmap

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pharos-node/pharos-node/etf"
)

// Errors of a refused data point, wrapped in *PointError. A point whose records etf's Validate
// refuses carries the *etf.ValidationError instead (too many tags, a field too long, a non-finite
// value, bad UTF-8, a duplicate key).
var (
	// ErrDeltaUpDown: a non-monotonic Sum with delta temporality. Its values are changes of a
	// level the Brain does not know, so no gauge can be sent; refused rather than sent wrong (as
	// ingest refuses StatsD gauge deltas).
	ErrDeltaUpDown = errors.New("otelmap: delta non-monotonic sum (an up-down counter's change) has no gauge form")
	// ErrNoValue: the point carries the NoRecordedValue flag (a staleness marker) and no value.
	ErrNoValue = errors.New("otelmap: data point has no recorded value")
	// ErrTooManyBuckets: a histogram point with more buckets than Options.MaxBuckets (each
	// bucket is a record).
	ErrTooManyBuckets = errors.New("otelmap: histogram point has too many buckets")
	// ErrMalformed: the point breaks OTLP's own rules (bucket counts that do not match the
	// bounds, an empty or unknown data type).
	ErrMalformed = errors.New("otelmap: malformed data point")
)

// Reasons: the values of the reason label of the refusal counters, a fixed set. Reason maps an
// error to one of them.
const (
	ReasonNonFinite   = "non_finite"       // a NaN or infinite value, sum, bound, min or max
	ReasonTooManyTags = "too_many_tags"    // more attributes (point and resource) than RecordLimits.MaxTags
	ReasonTooLong     = "too_long"         // a name, key, value or source over its RecordLimits length
	ReasonInvalid     = "invalid"          // other Validate refusals: empty name or key, duplicate key, bad UTF-8
	ReasonUnsupported = "unsupported"      // ErrDeltaUpDown
	ReasonNoValue     = "no_value"         // ErrNoValue
	ReasonMalformed   = "malformed"        // ErrMalformed
	ReasonTooMany     = "too_many_buckets" // ErrTooManyBuckets
)

// Reason returns the refusal reason of err, one of the Reason constants.
func Reason(err error) string {
	switch {
	case errors.Is(err, etf.ErrNonFinite):
		return ReasonNonFinite
	case errors.Is(err, etf.ErrTooManyTags):
		return ReasonTooManyTags
	case errors.Is(err, etf.ErrFieldTooLong):
		return ReasonTooLong
	case errors.Is(err, ErrDeltaUpDown):
		return ReasonUnsupported
	case errors.Is(err, ErrNoValue):
		return ReasonNoValue
	case errors.Is(err, ErrMalformed):
		return ReasonMalformed
	case errors.Is(err, ErrTooManyBuckets):
		return ReasonTooMany
	}
	return ReasonInvalid
}

// PointError is one refused data point: the metric's name and the point's index in it.
type PointError struct {
	Metric string
	Point  int
	Err    error
}

func (e *PointError) Error() string {
	name := e.Metric
	if len(name) > maxNameInError {
		name = name[:maxNameInError] + "..."
	}
	return fmt.Sprintf("metric %q point %d: %v", name, e.Point, e.Err)
}

// maxNameInError is how much of a metric's name an error repeats.
const maxNameInError = 64

func (e *PointError) Unwrap() error { return e.Err }

// Defaults of Options.
const (
	DefaultSource     = "unknown_service"
	DefaultMaxErrors  = 8
	DefaultMaxBuckets = 1024
)

// Options configure a Mapper. The zero value is usable.
type Options struct {
	// Limits are etf's record limits each record is validated against (zero fields: etf's
	// defaults). Use the same limits as the agent or sink the records go to.
	Limits etf.RecordLimits
	// DefaultSource is the source of records whose resource has no service.name (or an empty
	// one). Default DefaultSource.
	DefaultSource string
	// ResourceTags chooses the resource attributes that become tags. Nil: every one except
	// service.name (it is the source) and telemetry.sdk.* (they describe the SDK, not the
	// service). Not nil: exactly the attributes with these keys, in the resource's order.
	ResourceTags []string
	// Now stamps points whose time is 0 (unknown). Nil: time.Now.
	Now func() time.Time
	// MaxBuckets bounds the buckets of one histogram point (explicit bounds, or populated
	// exponential buckets on both sides), since each becomes a record. Default DefaultMaxBuckets.
	MaxBuckets int
	// MaxErrors is how many PointErrors a Batch keeps for its message (all are counted).
	// Default DefaultMaxErrors.
	MaxErrors int
}

// Mapper turns OTel data points into WIRE.md records. It holds only its options: safe for
// concurrent use; each export or request uses a Batch of its own.
type Mapper struct {
	limits       etf.RecordLimits
	source       string
	resourceKeys map[string]struct{} // nil: the default selection
	now          func() time.Time
	maxErrors    int
	maxBuckets   int
}

// New returns a Mapper.
func New(o Options) *Mapper {
	m := &Mapper{limits: o.Limits, source: o.DefaultSource, now: o.Now, maxErrors: o.MaxErrors, maxBuckets: o.MaxBuckets}
	if m.maxBuckets <= 0 {
		m.maxBuckets = DefaultMaxBuckets
	}
	if m.source == "" {
		m.source = DefaultSource
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.maxErrors <= 0 {
		m.maxErrors = DefaultMaxErrors
	}
	if o.ResourceTags != nil {
		m.resourceKeys = make(map[string]struct{}, len(o.ResourceTags))
		for _, k := range o.ResourceTags {
			m.resourceKeys[k] = struct{}{}
		}
	}
	if m.limits.MaxTags <= 0 {
		m.limits.MaxTags = etf.DefaultRecordLimits().MaxTags
	}
	return m
}

// Attributes is a read-only view of OTel attributes, each value already in its string form
// (see docs/otel.md: strings as they are, booleans and integers in decimal, doubles as in JSON,
// bytes in base64, arrays and maps as JSON). Range stops when f returns false.
type Attributes interface {
	Len() int
	Range(f func(key, value string) bool)
}

// Resource is what one OTel resource gives every record of its points: the source and tags.
type Resource struct {
	Source  string
	Tags    []etf.Tag
	tooMany int // tags past the limit, not kept (0: none)
}

// ServiceName is the resource attribute that becomes the records' source.
const ServiceName = "service.name"

// Resource maps a resource's attributes. It keeps at most MaxTags tags: a resource with more
// makes every one of its points refused (too many tags), without holding them all.
func (m *Mapper) Resource(attrs Attributes) Resource {
	r := Resource{Source: m.source}
	if attrs == nil {
		return r
	}
	attrs.Range(func(k, v string) bool {
		if k == ServiceName {
			if v != "" {
				r.Source = v
			}
			return true
		}
		if !m.resourceTag(k) {
			return true
		}
		if len(r.Tags) >= m.limits.MaxTags {
			r.tooMany++
			return true
		}
		r.Tags = append(r.Tags, etf.Tag{Key: k, Value: v})
		return true
	})
	return r
}

func (m *Mapper) resourceTag(k string) bool {
	if m.resourceKeys != nil {
		_, ok := m.resourceKeys[k]
		return ok
	}
	return !strings.HasPrefix(k, "telemetry.sdk.")
}

// Batch collects the records of one export or request, in the order of its points, and what
// was refused. A Batch is used by one goroutine.
type Batch struct {
	m *Mapper
	// Records are the valid records, in order: every record of a point, or none of them.
	Records []etf.Metric
	// Points counts the data points looked at; Refused those refused; ByReason the refusals by
	// Reason.
	Points, Refused int
	ByReason        map[string]int
	// Errors are the first MaxErrors refusals.
	Errors []*PointError
	// Ends has one entry per point that was not refused: the index in Records past its last
	// record. A caller that delivers point by point walks it.
	Ends []int

	prev *etf.Metric // the last record validated, for ValidateAfter
}

// NewBatch returns an empty Batch.
func (m *Mapper) NewBatch() *Batch { return &Batch{m: m} }

// Grow makes room for n more records (one per point of gauges and sums), so that a caller who
// knows the number of points spares the batch its regrowing.
func (b *Batch) Grow(n int) {
	if n > 0 {
		b.Records = append(make([]etf.Metric, 0, len(b.Records)+n), b.Records...)
		b.Ends = append(make([]int, 0, len(b.Ends)+n), b.Ends...)
	}
}

// Err summarises the refusals: nil when none, else an error naming the count and the first.
func (b *Batch) Err() error {
	if b.Refused == 0 {
		return nil
	}
	return &RefusedError{Refused: b.Refused, Points: b.Points, ByReason: b.ByReason, First: b.Errors[0]}
}

// Message is the text of b's refusals for an OTLP partial_success: the count and the first
// errors.
func (b *Batch) Message() string {
	if b.Refused == 0 {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d of %d data points refused", b.Refused, b.Points)
	for i, e := range b.Errors {
		if i == 0 {
			sb.WriteString(": ")
		} else {
			sb.WriteString("; ")
		}
		sb.WriteString(e.Error())
	}
	if len(b.Errors) < b.Refused {
		sb.WriteString("; ...")
	}
	return sb.String()
}

// RefusedError says that some points of a batch were refused; the others went through.
type RefusedError struct {
	Refused, Points int
	ByReason        map[string]int
	First           *PointError
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("otelmap: %d of %d data points refused (%v); first: %v", e.Refused, e.Points, e.ByReason, e.First)
}

func (e *RefusedError) Unwrap() error { return e.First }

// refuse records one refused point.
func (b *Batch) refuse(metric string, point int, err error) {
	b.Refused++
	if b.ByReason == nil {
		b.ByReason = map[string]int{}
	}
	b.ByReason[Reason(err)]++
	if len(b.Errors) < b.m.maxErrors {
		b.Errors = append(b.Errors, &PointError{Metric: metric, Point: point, Err: err})
	}
}

// Refuse records a point refused by the caller (a sink that could not take its records), under
// reason; err is kept for the message.
func (b *Batch) Refuse(metric string, point int, reason string, err error) {
	b.Refused++
	if b.ByReason == nil {
		b.ByReason = map[string]int{}
	}
	b.ByReason[reason]++
	if len(b.Errors) < b.m.maxErrors {
		b.Errors = append(b.Errors, &PointError{Metric: metric, Point: point, Err: err})
	}
}
