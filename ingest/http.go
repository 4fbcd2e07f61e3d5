package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Defaults of HTTPOptions.
const (
	DefaultHTTPMaxBodyBytes = 1 << 20
	DefaultHTTPMaxRecords   = 1000
	DefaultHTTPSource       = "http"
)

// Paths the Handler serves.
const (
	MetricsPath = "/v1/metrics"
	AlertsPath  = "/v1/alerts"
)

// HTTPOptions configure a Handler.
type HTTPOptions struct {
	Common
	// Source is the source of a record that names none. Default DefaultHTTPSource.
	Source string
	// MaxBodyBytes is the largest request body; a longer one is answered 413 and nothing in it is
	// delivered. Default DefaultHTTPMaxBodyBytes.
	MaxBodyBytes int64
	// MaxRecords is the most records one request may carry; more is answered 413 and nothing is
	// delivered. Default DefaultHTTPMaxRecords.
	MaxRecords int
}

// Handler serves POST /v1/metrics and POST /v1/alerts. Mount it on the daemon's mux for both paths,
// or for "/v1/". It is safe for concurrent use.
type Handler struct {
	p            *pipeline
	source       string
	maxBodyBytes int64
	maxRecords   int
}

// NewHandler returns a Handler delivering to opts.Sink.
func NewHandler(opts HTTPOptions) (*Handler, error) {
	p, err := newPipeline(KindHTTP, opts.Common)
	if err != nil {
		return nil, err
	}
	h := &Handler{p: p, source: opts.Source, maxBodyBytes: opts.MaxBodyBytes, maxRecords: opts.MaxRecords}
	if h.source == "" {
		h.source = DefaultHTTPSource
	}
	if h.maxBodyBytes <= 0 {
		h.maxBodyBytes = DefaultHTTPMaxBodyBytes
	}
	if h.maxRecords <= 0 {
		h.maxRecords = DefaultHTTPMaxRecords
	}
	return h, nil
}

// Response is the JSON body of every answer of the Handler.
type Response struct {
	// Accepted is how many records were handed to the sink.
	Accepted int `json:"accepted"`
	// Refused names each record that was not, by its index in the request (0 for a single object).
	Refused []Refusal `json:"refused"`
	// Error explains why the whole request was refused (status 405, 413, 415, or 400 for a body that
	// is not JSON); empty otherwise.
	Error string `json:"error,omitempty"`
}

// Refusal is one refused record.
type Refusal struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// ServeHTTP answers:
//   - 200 when every record was accepted;
//   - 400 when at least one record was refused for its content (the others were delivered), or when
//     the body is not one JSON object or array (nothing delivered);
//   - 503, with Retry-After, when records were refused only because the sink was full or failed;
//   - 413 for a body over MaxBodyBytes or more than MaxRecords records, 415 for a Content-Type that
//     is not JSON, 405 for another method, 404 for another path (nothing delivered).
//
// A client that retries should resend only the refused indices: the others were delivered.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	alerts := false
	switch r.URL.Path {
	case MetricsPath:
	case AlertsPath:
		alerts = true
	default:
		h.reply(w, http.StatusNotFound, Response{Error: fmt.Sprintf("no such endpoint %q; use %s or %s", r.URL.Path, MetricsPath, AlertsPath)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, http.StatusMethodNotAllowed, Response{Error: "use POST"})
		return
	}
	if err := checkMediaType(r.Header.Get("Content-Type")); err != nil {
		h.refuseRequest(w, http.StatusUnsupportedMediaType, err)
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrBodyTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		h.refuseRequest(w, status, err)
		return
	}
	raws, err := splitBody(body, h.maxRecords)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrTooManyRecords) {
			status = http.StatusRequestEntityTooLarge
		}
		h.refuseRequest(w, status, err)
		return
	}

	def := recordDefaults{timestampMs: h.p.nowMs(), source: h.source}
	resp := Response{Refused: []Refusal{}}
	invalid, sinkRefused := 0, 0
	for i, raw := range raws {
		var err error
		if alerts {
			a, derr := decodeAlert(raw, def)
			if err = derr; err == nil {
				err = h.p.deliverAlert(a)
			} else {
				h.p.refuse(err)
			}
		} else {
			m, derr := decodeMetric(raw, def)
			if err = derr; err == nil {
				err = h.p.deliverMetric(m)
			} else {
				h.p.refuse(err)
			}
		}
		if err == nil {
			resp.Accepted++
			continue
		}
		var serr *sinkError
		if errors.As(err, &serr) {
			sinkRefused++
		} else {
			invalid++
		}
		resp.Refused = append(resp.Refused, Refusal{Index: i, Error: err.Error()})
		h.p.warn("http: record refused", err, "path", r.URL.Path, "index", strconv.Itoa(i))
	}
	status := http.StatusOK
	switch {
	case invalid > 0:
		status = http.StatusBadRequest
	case sinkRefused > 0:
		w.Header().Set("Retry-After", "1")
		status = http.StatusServiceUnavailable
	}
	h.reply(w, status, resp)
}

// readBody reads the whole body, up to maxBodyBytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.maxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, r.ContentLength, h.maxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, h.maxBodyBytes)
		}
		return nil, fmt.Errorf("%w: reading body: %w", ErrMalformedJSON, err)
	}
	return body, nil
}

func (h *Handler) refuseRequest(w http.ResponseWriter, status int, err error) {
	h.p.refuseRequest(err)
	h.p.warn("http: request refused", err)
	h.reply(w, status, Response{Refused: []Refusal{}, Error: err.Error()})
}

func (h *Handler) reply(w http.ResponseWriter, status int, resp Response) {
	if resp.Refused == nil {
		resp.Refused = []Refusal{}
	}
	body, err := json.Marshal(resp)
	if err != nil { // a Response always marshals; keep the status anyway
		body = []byte(`{"accepted":0,"refused":[]}`)
	}
	body = append(body, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// checkMediaType accepts no Content-Type, application/json and any */*+json.
func checkMediaType(contentType string) error {
	if contentType == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return fmt.Errorf("%w: %q, want application/json", ErrMediaType, contentType)
}
