package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/pharos-node/pharos-node/etf"
)

// Defaults of HTTPOptions.
const (
	DefaultHTTPMaxBodyBytes     = 1 << 20
	DefaultHTTPMaxRecords       = 1000
	DefaultHTTPSource           = "http"
	DefaultHTTPMaxInflightBytes = 64 << 20
	DefaultHTTPBodyTimeout      = 10 * time.Second
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
	// MaxInflightBytes bounds the request bodies held at once by all requests together: a request
	// whose body would take the total over it is answered 429 with Retry-After, unread. At least
	// MaxBodyBytes. Default DefaultHTTPMaxInflightBytes (64 MiB), or MaxBodyBytes if larger.
	MaxInflightBytes int64
	// BodyTimeout bounds the reading of one request body: a body not received in time is answered
	// 408 and its bytes go back to the budget. Default DefaultHTTPBodyTimeout.
	BodyTimeout time.Duration
}

// Handler serves POST /v1/metrics and POST /v1/alerts. Mount it on the daemon's mux for both paths,
// or for "/v1/". It is safe for concurrent use.
type Handler struct {
	p            *pipeline
	source       string
	maxBodyBytes int64
	maxRecords   int
	bodyTimeout  time.Duration
	budget       *byteBudget
	readers      sync.Pool // *jsonReader
}

// NewHandler returns a Handler delivering to opts.Sink.
func NewHandler(opts HTTPOptions) (*Handler, error) {
	p, err := newPipeline(KindHTTP, opts.Common)
	if err != nil {
		return nil, err
	}
	h := &Handler{p: p, source: opts.Source, maxBodyBytes: opts.MaxBodyBytes, maxRecords: opts.MaxRecords,
		bodyTimeout: opts.BodyTimeout}
	if h.source == "" {
		h.source = DefaultHTTPSource
	}
	if h.maxBodyBytes <= 0 {
		h.maxBodyBytes = DefaultHTTPMaxBodyBytes
	}
	if h.maxRecords <= 0 {
		h.maxRecords = DefaultHTTPMaxRecords
	}
	if h.bodyTimeout <= 0 {
		h.bodyTimeout = DefaultHTTPBodyTimeout
	}
	maxInflight := opts.MaxInflightBytes
	if maxInflight <= 0 {
		maxInflight = max(DefaultHTTPMaxInflightBytes, h.maxBodyBytes)
	}
	if maxInflight < h.maxBodyBytes {
		return nil, fmt.Errorf("ingest: http: MaxInflightBytes %d is below MaxBodyBytes %d: the largest body could never be read",
			maxInflight, h.maxBodyBytes)
	}
	if h.budget, err = newByteBudget(maxInflight, opts.Registerer); err != nil {
		return nil, err
	}
	h.readers.New = func() any { return newJSONReader() }
	return h, nil
}

// Response is the JSON body of every answer of the Handler.
type Response struct {
	// Accepted is how many records were handed to the sink.
	Accepted int `json:"accepted"`
	// Refused names each record that was not, by its index in the request (0 for a single object).
	Refused []Refusal `json:"refused"`
	// Error explains why the whole request was refused (status 405, 408, 413, 415, 429, or 400 for
	// a body that is not JSON); empty otherwise.
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
//   - 429, with Retry-After, when records were refused only because the sink's buffer is full
//     under the refuse policy (ErrSinkOverflow): the client should retry them later;
//   - 503, with Retry-After, when records were refused only because the sink was full or failed;
//   - 429, with Retry-After, when the body would take the bodies in flight over MaxInflightBytes,
//     408 for a body not received within BodyTimeout;
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
	rd := h.readers.Get().(*jsonReader)
	defer h.readers.Put(rd)
	body, reserved, err := h.readBody(w, r, rd)
	defer h.budget.release(reserved)
	if err != nil {
		abandonBody(w)
		h.refuseRequest(w, statusOf(err), err)
		return
	}
	// The records' strings are substrings of body, which is not written while they are in use:
	// either it is never used again, or (reuse) the sink is done with them when it returns.
	reuse := !alerts && h.p.batch != nil
	if !reuse && len(rd.body) > 0 && unsafe.SliceData(body) == unsafe.SliceData(rd.body) {
		rd.body = nil // the sink may keep the strings: this buffer is theirs now
	}
	text := unsafe.String(unsafe.SliceData(body), len(body))
	defer rd.release()
	def := recordDefaults{timestampMs: h.p.nowMs(), source: h.source}
	var resp Response
	var n refusalCounts
	if alerts {
		resp, n, err = h.serveAlerts(rd, body, text, def, r.URL.Path)
	} else {
		resp, n, err = h.serveMetrics(rd, body, text, def, r.URL.Path)
	}
	if err != nil {
		h.refuseRequest(w, statusOf(err), err)
		return
	}
	status := http.StatusOK
	switch {
	case n.invalid > 0:
		status = http.StatusBadRequest
	case n.sink > 0 && n.overflow == n.sink:
		w.Header().Set("Retry-After", "1")
		status = http.StatusTooManyRequests
	case n.sink > 0:
		w.Header().Set("Retry-After", "1")
		status = http.StatusServiceUnavailable
	}
	h.reply(w, status, resp)
}

// refusalCounts counts a request's refused records: invalid ones, and those the sink refused
// (of which overflow: for a full buffer under the refuse policy, ErrSinkOverflow).
type refusalCounts struct{ invalid, sink, overflow int }

// sinkRefused counts a record the sink refused with err.
func (n *refusalCounts) sinkRefused(err error) {
	n.sink++
	if errors.Is(err, ErrSinkOverflow) {
		n.overflow++
	}
}

// serveMetrics decodes and validates every record, then delivers the valid ones together, in
// request order. A body refused as a whole (err) delivers and counts nothing else.
func (h *Handler) serveMetrics(rd *jsonReader, body []byte, text string, def recordDefaults, path string) (resp Response, n refusalCounts, err error) {
	// With a MetricsSink, ms and tags are the reader's, used again by the next request: the sink
	// does not keep them (MetricsSink's contract). With another sink they are this request's.
	ms, index, tags := rd.msBuf[:0], rd.indexBuf[:0], rd.tagBuf[:0] // index: the request index of each of ms
	if h.p.batch == nil {
		ms, tags = nil, nil
	}
	defer func() {
		if h.p.batch != nil {
			clear(ms) // no strings of this body kept alive by the pool
			clear(tags)
			rd.msBuf, rd.indexBuf, rd.tagBuf = ms[:0], index[:0], tags[:0]
		}
	}()
	resp.Refused = []Refusal{}
	var refusals []error // of resp.Refused, counted once the body is known to be JSON
	var prev *etf.Metric
	tags, err = rd.eachRecord(body, text, h.maxRecords, false, def, tags, func(i int, rec *record, err error) {
		if err == nil {
			err = rec.metric.ValidateAfter(prev, h.p.limits)
		}
		if err != nil {
			resp.Refused = append(resp.Refused, Refusal{Index: i, Error: err.Error()})
			refusals = append(refusals, err)
			return
		}
		ms = append(ms, rec.metric)
		index = append(index, i)
		prev = &ms[len(ms)-1]
	})
	if err != nil {
		return Response{}, n, err
	}
	for i, err := range refusals {
		n.invalid++
		h.p.refuse(err)
		h.p.warn("http: record refused", err, "path", path, "index", strconv.Itoa(resp.Refused[i].Index))
	}
	resp.Accepted = h.p.deliverMetrics(ms, func(j int, err error) {
		n.sinkRefused(err)
		resp.Refused = append(resp.Refused, Refusal{Index: index[j], Error: err.Error()})
		h.p.warn("http: record refused", err, "path", path, "index", strconv.Itoa(index[j]))
	})
	if n.invalid > 0 && n.sink > 0 {
		slices.SortStableFunc(resp.Refused, func(a, b Refusal) int { return a.Index - b.Index })
	}
	return resp, n, nil
}

// serveAlerts decodes every record, then validates and delivers them one by one.
func (h *Handler) serveAlerts(rd *jsonReader, body []byte, text string, def recordDefaults, path string) (resp Response, n refusalCounts, err error) {
	type decoded struct {
		alert etf.Alert
		err   error
	}
	var all []decoded
	_, err = rd.eachRecord(body, text, h.maxRecords, true, def, nil, func(_ int, rec *record, err error) {
		all = append(all, decoded{rec.alert, err})
	})
	if err != nil {
		return Response{}, n, err
	}
	resp.Refused = []Refusal{}
	for i, d := range all {
		err := d.err
		if err == nil {
			err = h.p.deliverAlert(d.alert)
		} else {
			h.p.refuse(err)
		}
		if err == nil {
			resp.Accepted++
			continue
		}
		var serr *sinkError
		if errors.As(err, &serr) {
			n.sinkRefused(err)
		} else {
			n.invalid++
		}
		resp.Refused = append(resp.Refused, Refusal{Index: i, Error: err.Error()})
		h.p.warn("http: record refused", err, "path", path, "index", strconv.Itoa(i))
	}
	return resp, n, nil
}

// statusOf is the status of a request refused as a whole for err.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBodyTooLarge), errors.Is(err, ErrTooManyRecords):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInflightBudget):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrBodyTimeout):
		return http.StatusRequestTimeout
	}
	return http.StatusBadRequest
}

func (h *Handler) refuseRequest(w http.ResponseWriter, status int, err error) {
	h.p.refuseRequest(err)
	h.p.warn("http: request refused", err)
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
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
	return fmt.Errorf("%w: %q; send the header Content-Type: application/json (curl -d sends "+
		"application/x-www-form-urlencoded unless given -H 'Content-Type: application/json')", ErrMediaType, contentType)
}
