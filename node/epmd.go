package node

// EPMD client (erl_dist_protocol.md, "EPMD Protocol"). Every request is
//
//	Len:16 | Tag:8 | Body
//
// PORT_PLEASE2_REQ (122) asks for a node's port on a new connection that EPMD closes after the
// PORT2_RESP (119). ALIVE2_REQ (120) registers this node; EPMD answers ALIVE2_X_RESP (118, 32-bit
// creation) or ALIVE2_RESP (121, 16-bit creation) and keeps the registration while the
// connection stays open.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// DefaultEPMDPort is EPMD's well-known port, used when neither an option nor ERL_EPMD_PORT says
// otherwise.
const DefaultEPMDPort = 4369

// EPMD request and response tags.
const (
	epmdAlive2Req      = 120
	epmdAlive2Resp     = 121
	epmdAlive2XResp    = 118
	epmdPortPlease2Req = 122
	epmdPort2Resp      = 119

	epmdNodeTypeHidden = 72 // 'H'
	epmdNodeTypeNormal = 77 // 'M'
	epmdProtocolTCP    = 0
	distVersion        = 6
)

// Sentinel errors of the EPMD client. Every error it returns wraps one of them in an *EPMDError.
var (
	// ErrEPMDUnreachable: no EPMD answers at the address (not started, wrong ERL_EPMD_PORT,
	// host down), or it closed the connection mid-answer.
	ErrEPMDUnreachable = errors.New("node: epmd unreachable")
	// ErrNodeNotRegistered: EPMD answered, but no node of that name is registered on that host.
	ErrNodeNotRegistered = errors.New("node: node not registered with epmd")
	// ErrNameInUse: EPMD refused to register this node because the name is taken.
	ErrNameInUse = errors.New("node: node name already in use")
	// ErrEPMDProtocol: EPMD answered something this client does not understand.
	ErrEPMDProtocol = errors.New("node: unexpected epmd answer")
)

// EPMDError reports a failed EPMD request: which request, at which address, for which node.
type EPMDError struct {
	Op   string // "PORT_PLEASE2" or "ALIVE2"
	Addr string // host:port of the EPMD
	Node string // the node name asked about or registered
	Err  error  // wraps one of the sentinels above
}

func (e *EPMDError) Error() string {
	return fmt.Sprintf("epmd %s %s at %s: %v", e.Op, e.Node, e.Addr, e.Err)
}

func (e *EPMDError) Unwrap() error { return e.Err }

// EPMDPortFromEnv returns the EPMD port named by ERL_EPMD_PORT, as erl reads it, or
// DefaultEPMDPort when the variable is empty. getenv is usually os.Getenv.
func EPMDPortFromEnv(getenv func(string) string) (int, error) {
	v := strings.TrimSpace(getenv("ERL_EPMD_PORT"))
	if v == "" {
		return DefaultEPMDPort, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("node: ERL_EPMD_PORT=%q is not a port number", v)
	}
	return p, nil
}

// EPMDClient talks to the EPMD daemons of the hosts named in node names.
// The zero value uses DefaultEPMDPort and a 5 s dial timeout. It is safe for concurrent use.
type EPMDClient struct {
	Port        int           // EPMD port on every host; 0 means DefaultEPMDPort
	DialTimeout time.Duration // 0 means 5 s
}

// NodeEntry is what EPMD knows about a registered node.
type NodeEntry struct {
	Name     string // the alive name, without "@host"
	Port     uint16 // distribution port
	Hidden   bool   // registered as a hidden node
	Protocol uint8  // 0 = TCP/IPv4
	High     uint16 // highest distribution version
	Low      uint16 // lowest distribution version
	Extra    []byte
}

func (c EPMDClient) addr(host string) string {
	port := c.Port
	if port == 0 {
		port = DefaultEPMDPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func (c EPMDClient) dial(ctx context.Context, addr string) (net.Conn, error) {
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", addr)
}

// SplitNodeName splits "name@host" into its two parts.
func SplitNodeName(node string) (alive, host string, err error) {
	alive, host, ok := strings.Cut(node, "@")
	if !ok || alive == "" || host == "" || strings.Contains(host, "@") {
		return "", "", fmt.Errorf("node: %q is not a node name of the form name@host", node)
	}
	return alive, host, nil
}

// PortPlease asks the EPMD on host for the port of the node registered as alive (the part of a
// node name before '@').
func (c EPMDClient) PortPlease(ctx context.Context, host, alive string) (NodeEntry, error) {
	addr := c.addr(host)
	fail := func(err error) (NodeEntry, error) {
		return NodeEntry{}, &EPMDError{Op: "PORT_PLEASE2", Addr: addr, Node: alive, Err: err}
	}
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrEPMDUnreachable, err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}

	req := make([]byte, 3, 3+len(alive))
	binary.BigEndian.PutUint16(req, uint16(1+len(alive)))
	req[2] = epmdPortPlease2Req
	req = append(req, alive...)
	if _, err := conn.Write(req); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrEPMDUnreachable, err))
	}
	resp, err := io.ReadAll(io.LimitReader(conn, 2+10+2+255+2+1024))
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrEPMDUnreachable, err))
	}
	entry, err := parsePort2Resp(resp)
	if err != nil {
		return fail(err)
	}
	return entry, nil
}

func parsePort2Resp(b []byte) (NodeEntry, error) {
	if len(b) < 2 {
		if len(b) == 0 {
			return NodeEntry{}, fmt.Errorf("%w: connection closed without an answer", ErrEPMDUnreachable)
		}
		return NodeEntry{}, fmt.Errorf("%w: %d-byte answer", ErrEPMDProtocol, len(b))
	}
	if b[0] != epmdPort2Resp {
		return NodeEntry{}, fmt.Errorf("%w: tag %d, want PORT2_RESP (%d)", ErrEPMDProtocol, b[0], epmdPort2Resp)
	}
	if b[1] != 0 {
		return NodeEntry{}, fmt.Errorf("%w (result %d)", ErrNodeNotRegistered, b[1])
	}
	b = b[2:]
	if len(b) < 10 {
		return NodeEntry{}, fmt.Errorf("%w: truncated PORT2_RESP", ErrEPMDProtocol)
	}
	e := NodeEntry{
		Port:     binary.BigEndian.Uint16(b[0:]),
		Hidden:   b[2] == epmdNodeTypeHidden,
		Protocol: b[3],
		High:     binary.BigEndian.Uint16(b[4:]),
		Low:      binary.BigEndian.Uint16(b[6:]),
	}
	nlen := int(binary.BigEndian.Uint16(b[8:]))
	b = b[10:]
	if len(b) < nlen+2 {
		return NodeEntry{}, fmt.Errorf("%w: truncated PORT2_RESP name", ErrEPMDProtocol)
	}
	e.Name = string(b[:nlen])
	b = b[nlen:]
	elen := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < elen {
		return NodeEntry{}, fmt.Errorf("%w: truncated PORT2_RESP extra", ErrEPMDProtocol)
	}
	e.Extra = append([]byte(nil), b[:elen]...)
	if e.High < distVersion || e.Low > distVersion {
		return NodeEntry{}, fmt.Errorf("%w: node speaks distribution versions %d..%d, we speak %d",
			ErrEPMDProtocol, e.Low, e.High, distVersion)
	}
	return e, nil
}

// EPMDRegistration is a live ALIVE2 registration. The node stays registered until Close.
type EPMDRegistration struct {
	conn     net.Conn
	Creation uint32 // the creation EPMD assigned
}

// Close ends the registration (EPMD forgets the node when the connection closes).
func (r *EPMDRegistration) Close() error { return r.conn.Close() }

// Register registers alive at port with the EPMD on host (normally the local host). hidden
// registers the node type as hidden.
func (c EPMDClient) Register(ctx context.Context, host, alive string, port uint16, hidden bool) (*EPMDRegistration, error) {
	addr := c.addr(host)
	fail := func(err error) (*EPMDRegistration, error) {
		return nil, &EPMDError{Op: "ALIVE2", Addr: addr, Node: alive, Err: err}
	}
	conn, err := c.dial(ctx, addr)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrEPMDUnreachable, err))
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	nodeType := byte(epmdNodeTypeNormal)
	if hidden {
		nodeType = epmdNodeTypeHidden
	}
	body := make([]byte, 0, 13+len(alive))
	body = append(body, epmdAlive2Req)
	body = binary.BigEndian.AppendUint16(body, port)
	body = append(body, nodeType, epmdProtocolTCP)
	body = binary.BigEndian.AppendUint16(body, distVersion)
	body = binary.BigEndian.AppendUint16(body, distVersion)
	body = binary.BigEndian.AppendUint16(body, uint16(len(alive)))
	body = append(body, alive...)
	body = binary.BigEndian.AppendUint16(body, 0) // no extra
	req := binary.BigEndian.AppendUint16(nil, uint16(len(body)))
	if _, err := conn.Write(append(req, body...)); err != nil {
		conn.Close()
		return fail(fmt.Errorf("%w: %w", ErrEPMDUnreachable, err))
	}
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		conn.Close()
		return fail(fmt.Errorf("%w: %w", ErrEPMDUnreachable, err))
	}
	var creation uint32
	switch hdr[0] {
	case epmdAlive2XResp, epmdAlive2Resp:
		if hdr[1] != 0 {
			conn.Close()
			return fail(fmt.Errorf("%w (result %d)", ErrNameInUse, hdr[1]))
		}
		n := 4
		if hdr[0] == epmdAlive2Resp {
			n = 2
		}
		var cb [4]byte
		if _, err := io.ReadFull(conn, cb[:n]); err != nil {
			conn.Close()
			return fail(fmt.Errorf("%w: %w", ErrEPMDUnreachable, err))
		}
		if n == 2 {
			creation = uint32(binary.BigEndian.Uint16(cb[:2]))
		} else {
			creation = binary.BigEndian.Uint32(cb[:4])
		}
	default:
		conn.Close()
		return fail(fmt.Errorf("%w: tag %d, want ALIVE2_X_RESP", ErrEPMDProtocol, hdr[0]))
	}
	conn.SetDeadline(time.Time{})
	return &EPMDRegistration{conn: conn, Creation: creation}, nil
}
