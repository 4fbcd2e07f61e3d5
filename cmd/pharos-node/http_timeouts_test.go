package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// A client that sends its request body too slowly is cut off at the read timeout: the handler's
// read fails and the connection is closed, instead of a handler held until shutdown.
func TestHTTPServerCutsOffASlowBody(t *testing.T) {
	s := newSources(nil, nil, zerolog.Nop())
	s.timeouts = httpTimeouts{readHeader: time.Second, read: 300 * time.Millisecond, write: time.Second, idle: time.Second}
	defer s.stop()
	handlerErr := make(chan error, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		handlerErr <- err
	})
	addr := freeTCP(t)
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	s.serveHTTP("test.listen", addr, l, handler)

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	require.NoError(t, err)
	start := time.Now()
	// One byte every 50 ms: 1,000 bytes would take 50 s.
	dribble := time.NewTicker(50 * time.Millisecond)
	defer dribble.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-handlerErr:
			require.Error(t, err, "the handler read a body that came in too slowly")
			took := time.Since(start)
			require.Less(t, took, 5*time.Second, "cut off after %v", took)
			// The server closes the connection (a reset, as the client's bytes are left unread).
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
			if _, err = io.ReadAll(conn); err != nil {
				require.ErrorIs(t, err, syscall.ECONNRESET, "connection not closed by the server")
			}
			return
		case <-dribble.C:
			_, _ = conn.Write([]byte("{"))
		case <-deadline:
			t.Fatal("handler still reading after 10 s")
		}
	}
}

// The daemon's servers get timeouts for every phase of a request.
func TestDefaultHTTPTimeouts(t *testing.T) {
	d := defaultHTTPTimeouts()
	for name, v := range map[string]time.Duration{"read header": d.readHeader, "read": d.read, "write": d.write, "idle": d.idle} {
		require.Positive(t, v, name)
	}
}
