package otlpsink

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
)

// StatusError is an answer that keeps the request's records (the manager backs off and sends
// them again): 429, 408, a 5xx, an authentication failure (401, 403, 407), an unexpected
// status; or, from Connect, an answer that shows the endpoint cannot take records.
type StatusError struct {
	URL        string
	Status     int
	RetryAfter time.Duration // as asked (before MaxRetryAfter); 0 when none
	Message    string        // from the body (google.rpc.Status), at most 256 bytes
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "otlpsink: POST %s: %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (Retry-After %s)", e.RetryAfter)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// verdict is what an answer means for the records of its request.
type verdict uint8

const (
	verdictAccepted verdict = iota // 2xx: delivered (partial_success counted)
	verdictDropped                 // a 4xx about the data: dropped, counted with the status
	verdictSplit                   // 413 for more than one point: send it in halves
	verdictKeep                    // retry later: 429, 408, 5xx, 401/403/407, anything else
)

// classify follows OTLP/HTTP's rules (429, 502, 503, 504 retry; other 4xx do not), retrying
// every 5xx, and keeping the records on authentication failures: those are the endpoint's
// configuration, not the data's, and fixing them delivers what waited.
func classify(status, points int) verdict {
	switch {
	case status >= 200 && status < 300:
		return verdictAccepted
	case status == http.StatusRequestEntityTooLarge && points > 1:
		return verdictSplit
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout,
		status == http.StatusUnauthorized, status == http.StatusForbidden,
		status == http.StatusProxyAuthRequired:
		return verdictKeep
	case status >= 400 && status < 500:
		return verdictDropped
	}
	return verdictKeep
}

// transport is one incarnation's fsm.RequestTransport. The manager's goroutine calls it, one
// call at a time.
type transport struct {
	s   *Sink
	enc *encoder
	gz  *gzip.Writer
}

// MinBatch makes the manager deliver once MaxPoints records wait, else at its flush interval.
func (t *transport) MinBatch() int { return t.s.opts.MaxPoints }

// Connect waits for a Retry-After that ends soon (or refuses with ErrRetryLater), then probes the
// receiver with an empty metrics request: a 2xx (or a 4xx about the data) means it takes
// records; an authentication failure, a wrong path (404, 405, 415), 429, 5xx or no answer
// means it does not, and nothing is sent or dropped.
func (t *transport) Connect(ctx context.Context) error {
	if err := t.s.waitRetryAfter(ctx, true); err != nil {
		return err
	}
	a, err := t.post(ctx, signalMetrics, nil)
	if err != nil {
		return err
	}
	switch v := classify(a.status, 0); {
	case v == verdictAccepted:
		return nil
	case v == verdictDropped && a.status != http.StatusNotFound && a.status != http.StatusMethodNotAllowed &&
		a.status != http.StatusUnsupportedMediaType:
		return nil // the receiver dislikes an empty request; it answers
	}
	if a.retryAfter > 0 {
		t.s.retryAfter(a.retryAfter)
	}
	return &StatusError{URL: t.s.metricsURL, Status: a.status, RetryAfter: a.retryAfter, Message: a.message}
}

// Deliver sends one record.
func (t *transport) Deliver(ctx context.Context, record []byte) error {
	_, err := t.DeliverBatch(ctx, [][]byte{record})
	return err
}

// DeliverBatch sends records in requests of at most MaxPoints points, each of one signal, in
// order, and returns how many from the front are done: accepted, or dropped and counted.
func (t *transport) DeliverBatch(ctx context.Context, records [][]byte) (int, error) {
	if err := t.s.waitRetryAfter(ctx, false); err != nil {
		return 0, err
	}
	done, limit := 0, t.s.opts.MaxPoints
	for done < len(records) {
		req := t.enc.next(records[done:], limit)
		if req.points > 0 {
			a, err := t.send(ctx, &req)
			if err != nil {
				return done, err
			}
			switch classify(a.status, req.points) {
			case verdictAccepted:
				t.accepted(&req, a)
			case verdictSplit:
				limit = max(1, req.points/2)
				if t.s.logAllowed("split") {
					t.s.log.Warn().Int("points", req.points).Int("retry_with", limit).
						Msg("OTLP receiver refused a request as too large (413): sending it in halves; lower otlp.max_points_per_request")
				}
				continue
			case verdictDropped:
				t.s.counters.drop(ReasonStatus(a.status), req.points)
				if t.s.logAllowed(ReasonStatus(a.status)) {
					t.s.log.Error().Int("status", a.status).Str("signal", req.sig.String()).Int("dropped", req.points).
						Str("message", a.message).Msg("OTLP receiver refused a request: its records are dropped (counted in pharos_otlpsink_dropped_total)")
				}
			default:
				t.s.counters.throttled.Add(1)
				t.s.retryAfter(a.retryAfter)
				return done, &StatusError{URL: t.urlOf(req.sig), Status: a.status, RetryAfter: a.retryAfter, Message: a.message}
			}
		}
		if req.undecodable > 0 {
			t.s.counters.drop(ReasonUndecodable, req.undecodable)
			if t.s.logAllowed(ReasonUndecodable) {
				t.s.log.Error().Int("dropped", req.undecodable).Msg("records that are neither a metric nor an alert: dropped")
			}
		}
		done += req.records
	}
	return done, nil
}

func (t *transport) accepted(req *request, a answer) {
	rejected := int(min(max(a.rejected, 0), int64(req.points)))
	t.s.counters.accepted(req.sig, req.points-rejected)
	if rejected > 0 || a.partialMessage != "" {
		t.s.counters.rejected.Add(uint64(rejected))
		t.s.counters.drop(ReasonPartialSuccess, rejected)
		if t.s.logAllowed(ReasonPartialSuccess) {
			t.s.log.Warn().Str("signal", req.sig.String()).Int("rejected", rejected).Int("points", req.points).
				Str("message", a.partialMessage).Msg("OTLP receiver accepted a request in part (partial_success)")
		}
	}
}

func (t *transport) urlOf(sig signal) string {
	if sig == signalLogs {
		return t.s.logsURL
	}
	return t.s.metricsURL
}

// send encodes req and posts it.
func (t *transport) send(ctx context.Context, req *request) (answer, error) {
	var (
		raw []byte
		err error
	)
	if req.sig == signalLogs {
		raw, err = proto.Marshal(req.logs)
	} else {
		raw, err = proto.Marshal(req.metrics)
	}
	if err != nil {
		return answer{}, fmt.Errorf("otlpsink: encode %s request: %w", req.sig, err)
	}
	return t.post(ctx, req.sig, raw)
}

// answer is what came back.
type answer struct {
	status         int
	retryAfter     time.Duration
	message        string // an error answer's google.rpc.Status message
	rejected       int64  // partial_success
	partialMessage string
}

// maxAnswer bounds what is read of an answer's body; maxDrain what is read past it so the
// connection can be used again.
const (
	maxAnswer = 64 << 10
	maxDrain  = 256 << 10
)

// post sends one request body (protobuf, compressed as configured) and reads the answer.
func (t *transport) post(ctx context.Context, sig signal, raw []byte) (answer, error) {
	body := raw
	if t.s.opts.Compression == CompressionGzip && len(raw) > 0 {
		var buf bytes.Buffer
		buf.Grow(len(raw)/4 + 64)
		if t.gz == nil {
			t.gz = gzip.NewWriter(&buf)
		} else {
			t.gz.Reset(&buf)
		}
		_, _ = t.gz.Write(raw) // a bytes.Buffer does not fail
		if err := t.gz.Close(); err != nil {
			return answer{}, fmt.Errorf("otlpsink: gzip: %w", err)
		}
		body = buf.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, t.s.opts.Timeout)
	defer cancel()
	url := t.urlOf(sig)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("otlpsink: %w", err)
	}
	for k, vs := range t.s.opts.Header {
		hreq.Header[k] = vs
	}
	hreq.Header.Set("Content-Type", contentProtobuf)
	if len(body) != len(raw) {
		hreq.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := t.s.client.Do(hreq)
	if err != nil {
		t.s.counters.failure(sig)
		return answer{}, fmt.Errorf("otlpsink: %w", err)
	}
	defer resp.Body.Close()
	t.s.counters.request(sig, resp.StatusCode, len(body))
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	a := answer{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), t.s.now())}
	if err != nil {
		return a, nil // the status is what counts; the body was for details
	}
	ctype := resp.Header.Get("Content-Type")
	if a.status >= 200 && a.status < 300 {
		a.rejected, a.partialMessage = partialSuccess(sig, ctype, data)
	} else {
		a.message = statusMessage(ctype, data)
	}
	return a, nil
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date; 0 if absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(24*time.Hour/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}
