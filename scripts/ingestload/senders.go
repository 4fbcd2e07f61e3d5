package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// newSender returns the sender of c.mode: HTTP JSON (the daemon's /v1/metrics), OTLP/JSON (an
// OTLP/HTTP receiver's /v1/metrics) or StatsD datagrams. With c.stamp every record's value is the
// time of sending in Unix microseconds, which test/erlang/bench/pharos_latency_brain.erl turns
// into a latency.
func newSender(c config) (sender, func(), error) {
	switch c.mode {
	case "http", "otlp":
		body := httpBody
		if c.mode == "otlp" {
			body = otlpBody
		}
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: c.workers, MaxIdleConnsPerHost: c.workers, IdleConnTimeout: time.Minute}}
		return func(k int64) (int, int, error) {
			var stamp int64
			if c.stamp {
				stamp = time.Now().UnixMicro()
			}
			resp, err := client.Post(c.url, "application/json", bytes.NewReader(body(int(k%64), c.batch, c.tags, stamp)))
			if err != nil {
				return 0, 0, err
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if c.mode == "otlp" {
				// An OTLP answer says what it rejected, not what it took.
				if resp.StatusCode == http.StatusOK {
					return c.batch, resp.StatusCode, err
				}
				return 0, resp.StatusCode, err
			}
			var r struct {
				Accepted int `json:"accepted"`
			}
			if err == nil {
				err = json.Unmarshal(raw, &r)
			}
			return r.Accepted, resp.StatusCode, err
		}, client.CloseIdleConnections, nil
	case "statsd":
		conn, err := net.Dial("udp", c.addr)
		if err != nil {
			return nil, nil, err
		}
		packets := make([][]byte, 64)
		for i := range packets {
			packets[i] = statsdPacket(i, c.batch, c.tags)
		}
		return func(k int64) (int, int, error) {
			_, err := conn.Write(packets[k%int64(len(packets))])
			return 0, 0, err
		}, func() { _ = conn.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown mode %q", c.mode)
}

// value is record i's value: the stamp when there is one, else a number of its own.
func value(b []byte, seed, n, i int, stamp int64) []byte {
	if stamp > 0 {
		return strconv.AppendInt(b, stamp, 10)
	}
	return fmt.Appendf(b, "%d.5", seed*n+i)
}

// httpBody is a request of n metrics in the form of the README's example: name, kind, value, tags
// as an object, timestamp_ms.
func httpBody(seed, n, tags int, stamp int64) []byte {
	b := make([]byte, 0, 200*n)
	b = append(b, '[')
	ts := time.Now().UnixMilli()
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":"http.server.requests","kind":"counter","value":`...)
		b = value(b, seed, n, i, stamp)
		b = append(b, `,"tags":{`...)
		for t := range tags {
			if t > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `"%s":"%s-%d"`, tagKeys[t%len(tagKeys)], tagKeys[t%len(tagKeys)], (seed+i+t)%7)
		}
		b = fmt.Appendf(b, `},"timestamp_ms":%d}`, ts)
	}
	return append(b, ']')
}

// otlpBody is an OTLP/JSON ExportMetricsServiceRequest of n gauges of one data point each, with
// the same names, values and attributes as httpBody's records.
func otlpBody(seed, n, tags int, stamp int64) []byte {
	b := make([]byte, 0, 300*n)
	b = append(b, `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"bench"}}]},"scopeMetrics":[{"scope":{"name":"ingestload"},"metrics":[`...)
	ts := time.Now().UnixNano()
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":"http.server.requests","gauge":{"dataPoints":[{"asDouble":`...)
		b = value(b, seed, n, i, stamp)
		b = fmt.Appendf(b, `,"timeUnixNano":"%d","attributes":[`, ts)
		for t := range tags {
			if t > 0 {
				b = append(b, ',')
			}
			b = fmt.Appendf(b, `{"key":"%s","value":{"stringValue":"%s-%d"}}`, tagKeys[t%len(tagKeys)], tagKeys[t%len(tagKeys)], (seed+i+t)%7)
		}
		b = append(b, "]}]}}"...)
	}
	return append(b, "]}]}]}"...)
}

var tagKeys = []string{"host", "method", "status", "region", "path", "env"}

// statsdPacket is n counter lines with DogStatsD tags.
func statsdPacket(seed, n, tags int) []byte {
	var b bytes.Buffer
	for i := range n {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "http.server.requests:%d|c", 1+(seed+i)%3)
		for t := range tags {
			if t == 0 {
				b.WriteString("|#")
			} else {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s:%s-%d", tagKeys[t%len(tagKeys)], tagKeys[t%len(tagKeys)], (seed+i+t)%7)
		}
	}
	return b.Bytes()
}
