package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// byteBudget is the bytes of request bodies all requests may hold at once. A request reserves its
// body's size before reading it (its Content-Length, or step by step for a body without one) and
// gives it back when its handler returns.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

// newByteBudget returns a budget of max bytes, and exports its use as
// pharos_ingest_http_inflight_bytes on reg (the first Handler's, when several share reg).
func newByteBudget(max int64, reg prometheus.Registerer) (*byteBudget, error) {
	b := &byteBudget{max: max}
	if reg != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "pharos", Subsystem: "ingest", Name: "http_inflight_bytes",
			Help: "Bytes of HTTP request bodies held now (reserved while they are read and decoded).",
		}, func() float64 { return float64(b.used.Load()) })
		if err := reg.Register(g); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("ingest: register http_inflight_bytes: %w", err)
			}
		}
	}
	return b, nil
}

// reserve takes n bytes if that keeps the total within max.
func (b *byteBudget) reserve(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// release gives back n reserved bytes.
func (b *byteBudget) release(n int64) {
	if n > 0 {
		b.used.Add(-n)
	}
}

// bodyStep is how much a body of unknown length grows by at first (doubling up to MaxBodyBytes).
const bodyStep = 16 << 10

// readBody reads the whole body, up to maxBodyBytes and within the in-flight budget and the body
// deadline, into a buffer of rd's (see jsonReader.bodyBuffer) or one of its own. It returns the
// bytes it reserved, which the caller releases once done with the body, also on error.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, rd *jsonReader) (body []byte, reserved int64, err error) {
	if r.ContentLength > h.maxBodyBytes {
		return nil, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, r.ContentLength, h.maxBodyBytes)
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(h.bodyTimeout)); err == nil {
		defer func() {
			if err == nil {
				_ = rc.SetReadDeadline(time.Time{})
			}
		}()
	}
	if r.ContentLength >= 0 {
		n := r.ContentLength
		if !h.budget.reserve(n) {
			return nil, 0, h.overBudget(n)
		}
		body = rd.bodyBuffer(int(n))
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, n, h.readError(err)
		}
		return body, n, nil
	}
	// No Content-Length (chunked): reserve as the buffer grows, up to maxBodyBytes.
	src := http.MaxBytesReader(w, r.Body, h.maxBodyBytes)
	for {
		if len(body) == cap(body) {
			if int64(cap(body)) >= h.maxBodyBytes {
				// Full: one byte more is a body too large, EOF the end.
				var one [1]byte
				n, err := src.Read(one[:])
				if n > 0 || err == nil {
					return nil, reserved, fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, h.maxBodyBytes)
				}
				if err == io.EOF {
					return body, reserved, nil
				}
				return nil, reserved, h.readError(err)
			}
			grow := min(max(int64(cap(body)), bodyStep), h.maxBodyBytes-int64(cap(body)))
			if !h.budget.reserve(grow) {
				return nil, reserved, h.overBudget(reserved + grow)
			}
			reserved += grow
			grown := make([]byte, len(body), int64(cap(body))+grow) // cap exactly what is reserved
			copy(grown, body)
			body = grown
		}
		n, err := src.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			return body, reserved, nil
		}
		if err != nil {
			return nil, reserved, h.readError(err)
		}
	}
}

// abandonBody makes the connection of a request whose body was not read to its end close after
// the answer, at once: net/http would otherwise read what is left of a body under 256 KiB before
// answering, waiting on a client that has stalled.
func abandonBody(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	w.Header().Set("Connection", "close")
}

func (h *Handler) overBudget(n int64) error {
	return fmt.Errorf("%w: this body (%d bytes) would take the bodies in flight over %d bytes; retry later",
		ErrInflightBudget, n, h.budget.max)
}

func (h *Handler) readError(err error) error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: limit %d bytes", ErrBodyTooLarge, h.maxBodyBytes)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: not received within %v", ErrBodyTimeout, h.bodyTimeout)
	}
	return fmt.Errorf("%w: reading body: %w", ErrMalformedJSON, err)
}
