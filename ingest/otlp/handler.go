package otlp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"

	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/internal/otelmap"
)

// Paths of OTLP/HTTP. Only metrics are served; the others are answered 404.
const (
	MetricsPath = "/v1/metrics"
	TracesPath  = "/v1/traces"
	LogsPath    = "/v1/logs"
)

// Content types of OTLP/HTTP.
const (
	ContentTypeProtobuf = "application/x-protobuf"
	ContentTypeJSON     = "application/json"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 16 << 20
	DefaultMaxRecords   = 100_000
	DefaultSource       = "otlp"
	DefaultRetryAfter   = time.Second
)

// Errors of whole requests; the answer's Status message carries them.
var (
	ErrMediaType    = errors.New("otlp: unsupported content type")
	ErrEncoding     = errors.New("otlp: unsupported content encoding")
	ErrBodyTooLarge = errors.New("otlp: request body too large")
	ErrMalformed    = errors.New("otlp: malformed request")
	ErrSinkFull     = errors.New("otlp: sink full, nothing delivered")
)

// Reasons of requests refused as a whole (pharos_ingest_requests_refused_total{source="otlp"}).
const (
	ReasonMediaType = "media_type"
	ReasonEncoding  = "encoding"
	ReasonTooLarge  = "too_large"
	ReasonMalformed = "malformed"
	ReasonTooMany   = "too_many"
	ReasonSinkFull  = "sink_full"
)

// Options configure a Handler. Only Common.Sink is required.
type Options struct {
	ingest.Common
	// Source is the source of records whose resource has no service.name. Default DefaultSource.
	Source string
	// ResourceTags chooses the resource attributes that become tags (otelmap.Options).
	ResourceTags []string
	// MaxBodyBytes bounds the body as sent and, when gzipped, as inflated: larger is answered
	// 413 and nothing is delivered. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxRecords bounds the records one request maps to (a histogram point is several): more
	// is answered 413 and nothing is delivered. Default DefaultMaxRecords.
	MaxRecords int
	// MaxBuckets bounds the buckets of one histogram point (otelmap.Options). Default
	// otelmap.DefaultMaxBuckets.
	MaxBuckets int
	// RetryAfter is the Retry-After of a 503. Default DefaultRetryAfter.
	RetryAfter time.Duration
}

// Handler serves OTLP/HTTP POST /v1/metrics. It is safe for concurrent use.
type Handler struct {
	p            *ingest.Pipeline
	mapper       *otelmap.Mapper
	maxBodyBytes int64
	maxRecords   int
	retryAfter   string
}

// NewHandler returns a Handler delivering to opts.Sink.
func NewHandler(opts Options) (*Handler, error) {
	p, err := ingest.NewPipeline(ingest.KindOTLP, opts.Common)
	if err != nil {
		return nil, err
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = DefaultMaxRecords
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	return &Handler{
		p: p,
		mapper: otelmap.New(otelmap.Options{Limits: opts.Limits, DefaultSource: opts.Source,
			ResourceTags: opts.ResourceTags, Now: p.Now, MaxBuckets: opts.MaxBuckets}),
		maxBodyBytes: opts.MaxBodyBytes,
		maxRecords:   opts.MaxRecords,
		retryAfter:   strconv.Itoa(max(1, int((opts.RetryAfter+time.Second-1)/time.Second))),
	}, nil
}

// ServeHTTP answers, as the OTLP specification says:
//   - 200 with an ExportMetricsServiceResponse, in the request's encoding; its partial_success
//     counts the data points refused (docs/otel.md) and names the first ones;
//   - 503 with Retry-After when the sink refused records and none of the request was delivered
//     (a retry duplicates nothing); when some were, 200 with those points in partial_success;
//   - 400 for a body that does not decode (nothing delivered), 413 for a body or a mapping over
//     its limit, 415 for another content type or encoding, 405, 404; with a google.rpc.Status.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != MetricsPath {
		h.fail(w, r, http.StatusNotFound, "", fmt.Errorf("otlp: no such endpoint %q; this receiver serves %s", r.URL.Path, MetricsPath))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.fail(w, r, http.StatusMethodNotAllowed, "", errors.New("otlp: use POST"))
		return
	}
	jsonBody, err := isJSON(r.Header.Get("Content-Type"))
	if err != nil {
		h.fail(w, r, http.StatusUnsupportedMediaType, ReasonMediaType, err)
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		status, reason := http.StatusBadRequest, ReasonMalformed
		switch {
		case errors.Is(err, ErrBodyTooLarge):
			status, reason = http.StatusRequestEntityTooLarge, ReasonTooLarge
		case errors.Is(err, ErrEncoding):
			status, reason = http.StatusUnsupportedMediaType, ReasonEncoding
		}
		h.fail(w, r, status, reason, err)
		return
	}
	req, err := decodeRequest(body, jsonBody)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, ReasonMalformed, fmt.Errorf("%w: %w", ErrMalformed, err))
		return
	}
	body = nil // the request is decoded; let the bytes go

	b := h.mapper.NewBatch()
	b.Grow(min(pointCount(req), h.maxRecords))
	if err := mapRequest(h.mapper, b, req, h.maxRecords); err != nil {
		h.fail(w, r, http.StatusRequestEntityTooLarge, ReasonTooMany, err)
		return
	}
	for reason, n := range b.ByReason {
		h.p.CountRefused(reason, n)
	}
	if b.Refused > 0 {
		h.p.Warn("otlp: data points refused", otelmap.Reason(b.Errors[0].Err), b.Err())
	}
	delivered, sinkRefused, sinkErr := h.deliver(b)
	if sinkRefused > 0 && delivered == 0 {
		w.Header().Set("Retry-After", h.retryAfter)
		h.fail(w, r, http.StatusServiceUnavailable, ReasonSinkFull, fmt.Errorf("%w: %w", ErrSinkFull, sinkErr))
		return
	}
	resp := &colmetricspb.ExportMetricsServiceResponse{}
	if rejected := b.Refused + sinkRefused; rejected > 0 {
		msg := b.Message()
		if sinkRefused > 0 {
			if msg != "" {
				msg += "; "
			}
			msg += fmt.Sprintf("%d data points not taken by the sink: %v", sinkRefused, sinkErr)
		}
		resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{RejectedDataPoints: int64(rejected),
			ErrorMessage: strings.ToValidUTF8(msg, "\uFFFD")}
	}
	out, err := encodeResponse(resp, jsonBody)
	if err != nil { // a response always marshals
		h.fail(w, r, http.StatusInternalServerError, "", err)
		return
	}
	writeBody(w, http.StatusOK, contentType(jsonBody), out)
}

// deliver hands the batch's records to the sink point by point. A point some of whose records
// the sink refused counts as refused.
func (h *Handler) deliver(b *otelmap.Batch) (delivered, refused int, firstErr error) {
	start := 0
	for _, end := range b.Ends {
		ok := true
		for i := start; i < end; i++ {
			if err := h.p.DeliverValid(b.Records[i]); err != nil {
				ok = false
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			delivered++
		}
		if !ok {
			refused++
		}
		start = end
	}
	return delivered, refused, firstErr
}

// readBody reads the body, inflating it when gzipped, within maxBodyBytes both ways.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.maxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, r.ContentLength, h.maxBodyBytes)
	}
	var src io.Reader = http.MaxBytesReader(w, r.Body, h.maxBodyBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, h.bodyError(err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, fmt.Errorf("%w: %q, want gzip or none", ErrEncoding, enc)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(src, h.maxBodyBytes+1))
	if err != nil {
		return nil, h.bodyError(err)
	}
	if n > h.maxBodyBytes {
		return nil, fmt.Errorf("%w: inflates past %d bytes", ErrBodyTooLarge, h.maxBodyBytes)
	}
	return buf.Bytes(), nil
}

func (h *Handler) bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, h.maxBodyBytes)
	}
	return fmt.Errorf("%w: reading body: %w", ErrMalformed, err)
}

// fail answers a request refused as a whole with a google.rpc.Status and counts it (reason ""
// counts nothing: a wrong path or method is not an ingestion failure).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, reason string, err error) {
	if reason != "" {
		h.p.CountRequestRefused(reason)
		h.p.Warn("otlp: request refused", reason, err, "path", r.URL.Path)
	}
	jsonBody, _ := isJSON(r.Header.Get("Content-Type"))
	writeBody(w, status, contentType(jsonBody), statusBody(jsonBody, grpcCode(status), err.Error()))
}

func writeBody(w http.ResponseWriter, status int, ctype string, body []byte) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func contentType(jsonBody bool) string {
	if jsonBody {
		return ContentTypeJSON
	}
	return ContentTypeProtobuf
}

// isJSON reads the request's Content-Type: protobuf (false) or JSON (true); anything else,
// none included (the specification requires one), is ErrMediaType.
func isJSON(ct string) (bool, error) {
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err == nil && mt == ContentTypeProtobuf:
		return false, nil
	case err == nil && mt == ContentTypeJSON:
		return true, nil
	}
	return false, fmt.Errorf("%w: %q, want %s or %s", ErrMediaType, ct, ContentTypeProtobuf, ContentTypeJSON)
}
