package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/pharos-node/pharos-node/ingest"
)

// A request with two good metrics and two bad ones: the good ones reach the sink, the answer names
// the bad ones by index.
func ExampleHandler() {
	sink := ingest.SinkFunc(func(rec ingest.Record) error {
		m := rec.Metric
		fmt.Printf("sink: %s %s %v %v ts=%d source=%s\n", m.Name, m.Kind, m.Value, m.Tags, m.TimestampMs, m.Source)
		return nil
	})
	h, err := ingest.NewHandler(ingest.HTTPOptions{
		Common: ingest.Common{Sink: sink, Now: func() time.Time { return time.UnixMilli(1700000000000) }},
		Source: "api",
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", h) // next to the daemon's /metrics and /healthz

	body := `[
	  {"name": "cpu.load", "kind": "gauge", "value": 0.42, "tags": {"host": "a", "dc": "x"}},
	  {"name": "cpu.load", "kind": "gauge"},
	  {"name": "reqs", "kind": "counter", "value": 3, "tags": [["path", "/"]], "timestamp_ms": 1, "source": "web"},
	  {"name": "temp", "kind": "gauge", "value": 1, "tags": {"room": "a", "room": "b"}}
	]`
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/metrics", strings.NewReader(body)))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// sink: cpu.load gauge 0.42 [{host a} {dc x}] ts=1700000000000 source=api
	// sink: reqs counter 3 [{path /}] ts=1 source=web
	// 400
	// {"accepted":2,"refused":[{"index":1,"error":"value: ingest: missing field"},{"index":3,"error":"etf: metric.tags[1].key: etf: duplicate tag key: \"room\""}]}
}
