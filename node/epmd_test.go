package node

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// fakeEPMD answers each connection with answer(request).
func fakeEPMD(t *testing.T, answer func(req []byte) []byte) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var hdr [2]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				req := make([]byte, binary.BigEndian.Uint16(hdr[:]))
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				c.Write(answer(req))
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func port2Resp(port uint16, name string) []byte {
	b := []byte{epmdPort2Resp, 0}
	b = binary.BigEndian.AppendUint16(b, port)
	b = append(b, epmdNodeTypeNormal, 0, 0, 6, 0, 6)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	return binary.BigEndian.AppendUint16(b, 0)
}

func TestEPMDPortPlease(t *testing.T) {
	port := fakeEPMD(t, func(req []byte) []byte {
		require.Equal(t, byte(epmdPortPlease2Req), req[0])
		if string(req[1:]) == "brain" {
			return port2Resp(9100, "brain")
		}
		return []byte{epmdPort2Resp, 1}
	})
	c := EPMDClient{Port: port}
	ctx := context.Background()
	e, err := c.PortPlease(ctx, "127.0.0.1", "brain")
	require.NoError(t, err)
	assert.Equal(t, NodeEntry{Name: "brain", Port: 9100, High: 6, Low: 6}, e)

	_, err = c.PortPlease(ctx, "127.0.0.1", "nobody")
	require.ErrorIs(t, err, ErrNodeNotRegistered)
	var ee *EPMDError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "PORT_PLEASE2", ee.Op)

	closed := EPMDClient{Port: freePortT(t)}
	_, err = closed.PortPlease(ctx, "127.0.0.1", "brain")
	require.ErrorIs(t, err, ErrEPMDUnreachable)
}

func TestEPMDTruncatedAnswers(t *testing.T) {
	full := port2Resp(9100, "brain")
	for i := 0; i < len(full); i++ {
		_, err := parsePort2Resp(full[:i])
		require.Error(t, err, "prefix %d", i)
	}
	_, err := parsePort2Resp([]byte{1, 0})
	require.ErrorIs(t, err, ErrEPMDProtocol)
}

func TestEPMDPortFromEnv(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	p, err := EPMDPortFromEnv(env(""))
	require.NoError(t, err)
	assert.Equal(t, DefaultEPMDPort, p)
	p, err = EPMDPortFromEnv(env("4400"))
	require.NoError(t, err)
	assert.Equal(t, 4400, p)
	_, err = EPMDPortFromEnv(env("x"))
	require.Error(t, err)
}

func freePortT(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Against a real epmd: ALIVE2 registers, PORT_PLEASE2 finds the node, a second ALIVE2 of the same
// name is refused, and closing the registration removes the entry.
func TestEPMDRealRegistration(t *testing.T) {
	rel := erltest.FromEnv(t)
	ep := erltest.StartEpmd(t, rel)
	c := EPMDClient{Port: ep.Port}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := c.Register(ctx, "127.0.0.1", "pharos_reg", 12345, true)
	require.NoError(t, err)
	e, err := c.PortPlease(ctx, "127.0.0.1", "pharos_reg")
	require.NoError(t, err)
	assert.Equal(t, uint16(12345), e.Port)
	assert.True(t, e.Hidden)

	_, err = c.Register(ctx, "127.0.0.1", "pharos_reg", 12346, true)
	require.ErrorIs(t, err, ErrNameInUse)

	names, err := exec.Command(rel.Epmd, "-port", strconv.Itoa(ep.Port), "-names").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(names), "pharos_reg")

	require.NoError(t, reg.Close())
	require.Eventually(t, func() bool {
		_, err := c.PortPlease(ctx, "127.0.0.1", "pharos_reg")
		return err != nil
	}, 5*time.Second, 50*time.Millisecond)
	_, err = c.PortPlease(ctx, "127.0.0.1", "pharos_reg")
	require.ErrorIs(t, err, ErrNodeNotRegistered)
}
