package node

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

// SendBinaries sends every payload as its own message, in order, as SendBinary one by one
// would, and counts each.
func TestConnSendBinariesInOrder(t *testing.T) {
	c, p, _, _ := startConn(t)
	var payloads [][]byte
	for i := range 50 {
		payloads = append(payloads, []byte{byte(i), 'x'})
	}
	out := c.Stats().MessagesOut
	go func() {
		n, err := c.SendBinaries(context.Background(), local, "pharos_brain", payloads)
		assert.NoError(t, err)
		assert.Equal(t, 50, n)
	}()
	for i := range 50 {
		ctl, msg := p.nextControl()
		require.Equal(t, RegSend{From: local, To: "pharos_brain"}, ctl)
		v, err := etf.Unmarshal(msg)
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i), 'x'}, v)
	}
	require.Eventually(t, func() bool { return c.Stats().MessagesOut == out+50 }, 2*time.Second, time.Millisecond)

	// A message that does not start with 131 is refused; those before it went out.
	n, err := c.SendAppendMany(context.Background(), local, "pharos_brain", 3, func(dst []byte, i int) ([]byte, error) {
		if i == 2 {
			return append(dst, 1, 2), nil
		}
		return append(dst, etf.TagVersion, etf.TagNil), nil
	})
	require.Error(t, err)
	require.Equal(t, 2, n)
	for range 2 {
		_, msg := p.nextControl()
		v, err := etf.Unmarshal(msg)
		require.NoError(t, err)
		require.Empty(t, v)
	}
}

// With the buffer at its high-water mark, SendBinaries appends what fits and then waits for
// room like SendBinary: when its context ends it returns how many went out, with
// ErrSendBufferFull, and the others were not sent.
func TestConnSendBinariesStopsOnAFullBuffer(t *testing.T) {
	c, p, _, _ := startConn(t, func(o *connOptions) { o.highWater = 256 })
	p.conn.SetReadDeadline(time.Now().Add(-time.Second)) // the peer reads nothing more
	payloads := make([][]byte, 1000)
	for i := range payloads {
		payloads[i] = []byte("0123456789")
	}
	out := c.Stats().MessagesOut
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	n, err := c.SendBinaries(ctx, local, "pharos_brain", payloads)
	require.ErrorIs(t, err, ErrSendBufferFull)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Greater(t, n, 0)
	require.Less(t, n, len(payloads))
	require.Equal(t, out+uint64(n), c.Stats().MessagesOut)
}
