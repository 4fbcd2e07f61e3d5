package ingest

import (
	"encoding/binary"
	"net"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// dropCountingReader turns on SO_RXQ_OVFL on conn's socket and returns a reader that adds the
// kernel's count of datagrams dropped on the socket (for want of receive buffer room) to drops,
// as it grows. The count comes with the next datagram queued after a drop, as a control message
// holding the socket's total. Nil if the option cannot be set.
func dropCountingReader(conn *net.UDPConn, drops prometheus.Counter) func([]byte) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	}); err != nil || serr != nil {
		return nil
	}
	oob := make([]byte, syscall.CmsgSpace(4))
	var seen uint32
	return func(b []byte) (int, error) {
		n, oobn, _, _, err := conn.ReadMsgUDP(b, oob)
		if err != nil {
			return n, err
		}
		if oobn > 0 {
			if total, ok := parseDropCount(oob[:oobn]); ok && total > seen {
				drops.Add(float64(total - seen))
				seen = total
			}
		}
		return n, nil
	}
}

// parseDropCount finds the SO_RXQ_OVFL control message in oob.
func parseDropCount(oob []byte) (uint32, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}
