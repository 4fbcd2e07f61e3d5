package main

// sd_notify: the daemon tells systemd (Type=notify) when it is ready, reloading and stopping,
// by datagrams on the unix socket named by NOTIFY_SOCKET (an abstract socket when the name
// starts with @). Without NOTIFY_SOCKET it does nothing. The protocol is sd_notify(3):
// newline-separated VAR=value assignments in one datagram.

import (
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// notifier sends state changes to systemd.
type notifier struct {
	conn *net.UnixConn // nil: not under systemd
	log  zerolog.Logger
}

func newNotifier(socket string, log zerolog.Logger) *notifier {
	n := &notifier{log: log}
	if socket == "" {
		return n
	}
	addr := &net.UnixAddr{Name: socket, Net: "unixgram"}
	if socket[0] == '@' {
		addr.Name = "\x00" + socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		log.Warn().Err(err).Str("socket", socket).Msg("NOTIFY_SOCKET is set but cannot be reached: systemd will not hear that the daemon is ready")
		return n
	}
	n.conn = conn
	return n
}

// send sends one state, such as "READY=1"; a failure is logged, never fatal.
func (n *notifier) send(state string) {
	if n.conn == nil {
		return
	}
	_ = n.conn.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := n.conn.Write([]byte(state)); err != nil {
		n.log.Warn().Err(err).Msg("sd_notify failed")
	}
}

func (n *notifier) close() {
	if n.conn != nil {
		n.conn.Close()
	}
}

// reloadingState is the notification a reload starts with; MONOTONIC_USEC lets systemd (253 and
// later) match it with the reload it asked for.
func reloadingState() string {
	return fmt.Sprintf("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%d", monotonicMicros())
}

// monotonicMicros reads CLOCK_MONOTONIC, the clock of MONOTONIC_USEC, in microseconds.
func monotonicMicros() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1_000
}
