package ingest

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// overflowSink takes capacity records, then refuses with ErrSinkOverflow (a buffer full under
// the refuse policy), or with plain ErrSinkFull once full is set.
type overflowSink struct {
	memSink
	full bool
}

func (s *overflowSink) Deliver(rec Record) error {
	s.mu.Lock()
	n, full := len(s.recs), s.full
	s.mu.Unlock()
	if n >= s.capacity {
		if full {
			return fmt.Errorf("queue: %w", ErrSinkFull)
		}
		return fmt.Errorf("ring holds %d records: %w", n, ErrSinkOverflow)
	}
	return s.memSink.Deliver(rec)
}

// A sink that refuses for a full buffer under the refuse policy (ErrSinkOverflow) gets 429 and
// Retry-After: the client should retry the refused records later. It counts as sink_full. A
// refusal that is only partly an overflow stays 503.
func TestHTTPSinkOverflow(t *testing.T) {
	sink := &overflowSink{memSink: memSink{capacity: 2}}
	reg := prometheus.NewRegistry()
	srv := newTestHandler(t, sink, reg, nil)
	one := `{"name":"n","kind":"gauge","value":1}`
	status, resp, hdr := post(t, srv.URL+MetricsPath, "application/json", "["+one+","+one+","+one+"]")
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "1", hdr.Get("Retry-After"))
	assert.Equal(t, 2, resp.Accepted)
	require.Len(t, resp.Refused, 1)
	assert.Equal(t, 2, resp.Refused[0].Index)
	assert.Contains(t, resp.Refused[0].Error, "retry later")
	assert.InDelta(t, 1, counterValue(t, counterVec(t, reg, "pharos_ingest_records_refused_total").WithLabelValues(KindHTTP, ReasonSinkFull)), 0)

	// Alerts go one by one through Deliver: the same.
	status, _, hdr = post(t, srv.URL+AlertsPath, "application/json", `{"name":"a","severity":"critical","message":"m"}`)
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "1", hdr.Get("Retry-After"))

	sink.mu.Lock()
	sink.full = true
	sink.mu.Unlock()
	status, _, _ = post(t, srv.URL+MetricsPath, "application/json", one)
	assert.Equal(t, http.StatusServiceUnavailable, status, "a sink full for another reason")
}
