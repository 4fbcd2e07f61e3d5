package node

// The distribution handshake, version 6 (erl_dist_protocol.md, "Distribution Handshake"; OTP's
// dist_util.erl). A = the side that dials, B = the side that accepts.
//
//	A -> B  send_name           'N' Flags:64 Creation:32 NLen:16 Name
//	B -> A  send_status         's' "ok" | "ok_simultaneous" | "nok" | "not_allowed" | "alive"
//	(A -> B 's' "true" when B said "alive": our old connection is dead, replace it)
//	B -> A  send_challenge      'N' Flags:64 Challenge:32 Creation:32 NLen:16 Name
//	A -> B  send_challenge_reply 'r' Challenge:32 Digest:128
//	B -> A  send_challenge_ack  'a' Digest:128
//
// Digest = MD5(Cookie ++ decimal(Challenge)): each side proves it knows the cookie by hashing
// the other's challenge. A always sends the 'N' name message; as B we also accept the old 'n'
// (version 5) message followed by the complement 'c' Flags-high:32 Creation:32.
// Frames carry a 16-bit length over TCP and a 32-bit length inside TLS.

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Handshake message tags.
const (
	tagNameV6        = 'N'
	tagNameV5        = 'n'
	tagStatus        = 's'
	tagChallengeV6   = 'N'
	tagComplement    = 'c'
	tagChallengeRepl = 'r'
	tagChallengeAck  = 'a'
)

// Handshake phases, as named in errors.
const (
	PhaseSendName       = "send_name"
	PhaseRecvStatus     = "recv_status"
	PhaseRecvChallenge  = "recv_challenge"
	PhaseSendReply      = "send_challenge_reply"
	PhaseRecvAck        = "recv_challenge_ack"
	PhaseRecvName       = "recv_name"
	PhaseSendStatus     = "send_status"
	PhaseSendChallenge  = "send_challenge"
	PhaseRecvComplement = "recv_complement"
	PhaseRecvReply      = "recv_challenge_reply"
	PhaseSendAck        = "send_challenge_ack"
	PhaseTLS            = "tls" // the TLS handshake before the distribution handshake
)

// Sentinel errors of the handshake; each arrives wrapped in a *HandshakeError.
var (
	// ErrWrongCookie: the peer's digest does not match our cookie, or the peer closed the
	// connection right after checking ours. Check the cookie on both sides.
	ErrWrongCookie = errors.New("node: wrong cookie: the peer and this node use different cookies")
	// ErrNotAllowed: the peer answered "not_allowed": it lacks one of the flags it requires of us
	// (the error names the flags we offered) or its net_kernel allow list excludes this node.
	ErrNotAllowed = errors.New("node: peer refused the connection (not_allowed)")
	// ErrSimultaneousConnect: the peer is connecting to us at the same time and its attempt wins
	// ("nok"); retry.
	ErrSimultaneousConnect = errors.New("node: simultaneous connect lost (nok)")
	// ErrUnexpectedMessage: the peer sent a message this phase does not expect.
	ErrUnexpectedMessage = errors.New("node: unexpected handshake message")
	// ErrPeerUnreachable: nothing accepts connections at the peer's address.
	ErrPeerUnreachable = errors.New("node: peer unreachable")
	// ErrWrongPeer: the peer introduced itself under another node name than the one dialled.
	ErrWrongPeer = errors.New("node: peer has another node name")
	// ErrAlreadyConnected: the peer answered "alive" to a dial while this node holds a live
	// connection to the same address; we answered "false", keeping that connection.
	ErrAlreadyConnected = errors.New("node: already connected to the peer (alive)")
)

// errPeerDialledTLS: a peer dialled this listening node with TLS; it listens without.
var errPeerDialledTLS = fmt.Errorf("%w: this node listens without TLS (ServerTLS unset)", errTLSRecord)

// HandshakeError is a failed handshake: with whom, in which phase, which message tag was read
// (0 if none), and why.
type HandshakeError struct {
	Peer  string // node name if known, else the remote address
	Phase string // one of the Phase* constants
	Tag   byte   // tag of the offending message, 0 if none
	Err   error
}

func (e *HandshakeError) Error() string {
	if e.Tag != 0 {
		return fmt.Sprintf("handshake with %s failed in %s (message %q): %v", e.Peer, e.Phase, e.Tag, e.Err)
	}
	return fmt.Sprintf("handshake with %s failed in %s: %v", e.Peer, e.Phase, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// FlagError reports missing distribution flags. ByPeer tells who refused: false when the peer
// lacks flags we require, true when the peer refused ours (Missing is then the set we offered
// that it might want beyond, i.e. unknown; Offered lists what we announced).
type FlagError struct {
	Missing Flags // flags we require that the peer did not announce
	Offered Flags // what we announced
	ByPeer  bool
}

func (e *FlagError) Error() string {
	if e.ByPeer {
		return fmt.Sprintf("peer refused our distribution flags (offered %s)", e.Offered)
	}
	return fmt.Sprintf("peer lacks mandatory distribution flags %s", e.Missing)
}

// handshakeParams are the inputs of one handshake, for either side.
type handshakeParams struct {
	name     string // our node name
	creation uint32
	flags    Flags
	require  Flags // flags the peer must announce
	cookie   string
	lenSize  int           // 2 over TCP, 4 inside TLS
	timeout  time.Duration // whole handshake; 0 = none
	rand     io.Reader     // challenges
	expect   string        // dialled node name; "" accepts any
	// connected reports, when the peer answers "alive", whether this node still holds a live
	// connection to it (then the answer is "false"); nil means none.
	connected func() bool
	// explain, when set, adds what an error of the TLS session under the handshake means.
	explain func(error) error
}

// peerInfo is what the handshake learnt about the peer.
type peerInfo struct {
	name     string
	flags    Flags
	creation uint32
}

func digest(cookie string, challenge uint32) [16]byte {
	return md5.Sum([]byte(cookie + strconv.FormatUint(uint64(challenge), 10)))
}

func newChallenge(r io.Reader) (uint32, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("node: reading a random challenge: %w", err)
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

type handshaker struct {
	conn net.Conn
	p    handshakeParams
	peer string
}

func (h *handshaker) fail(phase string, tag byte, err error) error {
	if h.p.explain != nil {
		err = h.p.explain(err)
	}
	return &HandshakeError{Peer: h.peer, Phase: phase, Tag: tag, Err: err}
}

func (h *handshaker) read(phase string) ([]byte, error) {
	b, err := h.readRaw()
	if err != nil {
		return nil, h.fail(phase, 0, err)
	}
	if len(b) == 0 {
		return nil, h.fail(phase, 0, fmt.Errorf("%w: empty message", ErrUnexpectedMessage))
	}
	return b, nil
}

func (h *handshaker) readRaw() ([]byte, error) {
	return readHandshakeFrame(h.conn, h.p.lenSize, 1<<16)
}

func (h *handshaker) write(phase string, body []byte) error {
	if err := writeHandshakeFrame(h.conn, h.p.lenSize, body); err != nil {
		return h.fail(phase, 0, err)
	}
	return nil
}

func (h *handshaker) setDeadline() func() {
	if h.p.timeout <= 0 {
		return func() {}
	}
	h.conn.SetDeadline(time.Now().Add(h.p.timeout))
	return func() { h.conn.SetDeadline(time.Time{}) }
}

func checkParams(p *handshakeParams) error {
	if p.lenSize != 2 && p.lenSize != 4 {
		p.lenSize = 2
	}
	if p.flags&FlagPublished != 0 {
		return errors.New("node: refusing to announce FlagPublished: a Pharos node is hidden")
	}
	if bad := p.flags & unsupported; bad != 0 {
		return fmt.Errorf("node: refusing to announce unimplemented flags %s", bad)
	}
	if len(p.name) > 255 {
		return fmt.Errorf("node: node name of %d bytes (limit 255)", len(p.name))
	}
	return nil
}

// dialHandshake runs side A on conn: one step per wire message.
func dialHandshake(conn net.Conn, p handshakeParams) (peerInfo, error) {
	if err := checkParams(&p); err != nil {
		return peerInfo{}, err
	}
	h := &handshaker{conn: conn, p: p, peer: p.expect}
	if h.peer == "" {
		h.peer = conn.RemoteAddr().String()
	}
	defer h.setDeadline()()
	if err := h.sendName(); err != nil {
		return peerInfo{}, err
	}
	if err := h.recvStatus(); err != nil {
		return peerInfo{}, err
	}
	peer, theirs, err := h.recvChallenge()
	if err != nil {
		return peerInfo{}, err
	}
	ours, err := h.sendChallengeReply(theirs)
	if err != nil {
		return peerInfo{}, err
	}
	if err := h.recvChallengeAck(ours); err != nil {
		return peerInfo{}, err
	}
	return peer, nil
}

// acceptHandshake runs side B on conn: one step per wire message.
func acceptHandshake(conn net.Conn, p handshakeParams) (peerInfo, error) {
	if err := checkParams(&p); err != nil {
		return peerInfo{}, err
	}
	h := &handshaker{conn: conn, p: p, peer: conn.RemoteAddr().String()}
	defer h.setDeadline()()
	peer, v5, err := h.recvName()
	if err != nil {
		return peerInfo{}, err
	}
	if err := h.sendStatus(); err != nil {
		return peerInfo{}, err
	}
	ours, err := h.sendChallenge()
	if err != nil {
		return peerInfo{}, err
	}
	if v5 {
		if err := h.recvComplement(&peer); err != nil {
			return peerInfo{}, err
		}
	}
	theirs, err := h.recvChallengeReply(ours)
	if err != nil {
		return peerInfo{}, err
	}
	if err := h.sendChallengeAck(theirs); err != nil {
		return peerInfo{}, err
	}
	return peer, nil
}

// ---- side A ----

// sendName: 'N' Flags:64 Creation:32 NLen:16 Name.
func (h *handshaker) sendName() error {
	msg := make([]byte, 0, 15+len(h.p.name))
	msg = append(msg, tagNameV6)
	msg = binary.BigEndian.AppendUint64(msg, uint64(h.p.flags))
	msg = binary.BigEndian.AppendUint32(msg, h.p.creation)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(h.p.name)))
	msg = append(msg, h.p.name...)
	return h.write(PhaseSendName, msg)
}

// recvStatus: 's' Status. "alive" is answered here with 's' "true" or "false".
func (h *handshaker) recvStatus() error {
	b, err := h.readRaw()
	switch {
	case errors.Is(err, errTLSRecord):
		return h.fail(PhaseRecvStatus, 0, ErrPeerRequiresTLS)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// dist_util closes without a status when it cannot use us at all.
		return h.fail(PhaseRecvStatus, 0, fmt.Errorf("peer closed the connection without a status: %w", err))
	case err != nil:
		return h.fail(PhaseRecvStatus, 0, err)
	}
	if len(b) == 0 {
		return h.fail(PhaseRecvStatus, 0, fmt.Errorf("%w: empty message", ErrUnexpectedMessage))
	}
	if b[0] != tagStatus {
		return h.fail(PhaseRecvStatus, b[0], ErrUnexpectedMessage)
	}
	switch status := string(b[1:]); status {
	case "ok", "ok_simultaneous":
		return nil
	case "alive":
		return h.sendStatusAlive()
	case "nok":
		return h.fail(PhaseRecvStatus, tagStatus, ErrSimultaneousConnect)
	case "not_allowed":
		return h.fail(PhaseRecvStatus, tagStatus,
			fmt.Errorf("%w: %w", ErrNotAllowed, &FlagError{Offered: h.p.flags, ByPeer: true}))
	default:
		return h.fail(PhaseRecvStatus, tagStatus, fmt.Errorf("%w: status %q", ErrUnexpectedMessage, status))
	}
}

// sendStatusAlive answers the status "alive": the peer holds a connection with this node name.
// If it is ours and alive (another dial raced this one), keep it ('s' "false"; "true" would
// make the peer kill it); otherwise it is from an earlier incarnation of this node: 's' "true"
// tells the peer to replace it.
func (h *handshaker) sendStatusAlive() error {
	if h.p.connected != nil && h.p.connected() {
		h.write(PhaseRecvStatus, []byte("sfalse"))
		return h.fail(PhaseRecvStatus, tagStatus, ErrAlreadyConnected)
	}
	return h.write(PhaseRecvStatus, []byte("strue"))
}

// recvChallenge: 'N' Flags:64 Challenge:32 Creation:32 NLen:16 Name. It returns the peer and its
// challenge.
func (h *handshaker) recvChallenge() (peerInfo, uint32, error) {
	b, err := h.read(PhaseRecvChallenge)
	if err != nil {
		return peerInfo{}, 0, err
	}
	if b[0] != tagChallengeV6 || len(b) < 19 {
		return peerInfo{}, 0, h.fail(PhaseRecvChallenge, b[0], fmt.Errorf("%w: %d bytes", ErrUnexpectedMessage, len(b)))
	}
	peer := peerInfo{
		flags:    Flags(binary.BigEndian.Uint64(b[1:])),
		creation: binary.BigEndian.Uint32(b[13:]),
	}
	challenge := binary.BigEndian.Uint32(b[9:])
	nlen := int(binary.BigEndian.Uint16(b[17:]))
	if len(b) != 19+nlen {
		return peerInfo{}, 0, h.fail(PhaseRecvChallenge, b[0], fmt.Errorf("%w: name length %d in %d bytes", ErrUnexpectedMessage, nlen, len(b)))
	}
	peer.name = string(b[19:])
	if h.p.expect != "" && peer.name != h.p.expect {
		return peerInfo{}, 0, h.fail(PhaseRecvChallenge, b[0], fmt.Errorf("%w: dialled %s, it says %s", ErrWrongPeer, h.p.expect, peer.name))
	}
	h.peer = peer.name
	if missing := peer.flags.Missing(h.p.require); missing != 0 {
		return peerInfo{}, 0, h.fail(PhaseRecvChallenge, b[0], &FlagError{Missing: missing, Offered: h.p.flags})
	}
	return peer, challenge, nil
}

// sendChallengeReply: 'r' Challenge:32 Digest:128, the digest of the peer's challenge. It
// returns our challenge.
func (h *handshaker) sendChallengeReply(theirs uint32) (uint32, error) {
	ours, err := newChallenge(h.p.rand)
	if err != nil {
		return 0, h.fail(PhaseSendReply, 0, err)
	}
	sum := digest(h.p.cookie, theirs)
	msg := make([]byte, 0, 21)
	msg = append(msg, tagChallengeRepl)
	msg = binary.BigEndian.AppendUint32(msg, ours)
	msg = append(msg, sum[:]...)
	return ours, h.write(PhaseSendReply, msg)
}

// recvChallengeAck: 'a' Digest:128, the digest of our challenge. A peer that closes the
// connection instead refused our digest.
func (h *handshaker) recvChallengeAck(ours uint32) error {
	b, err := h.readRaw()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err) {
			return h.fail(PhaseRecvAck, 0, fmt.Errorf("%w (the peer closed the connection after checking our digest)", ErrWrongCookie))
		}
		return h.fail(PhaseRecvAck, 0, err)
	}
	if len(b) != 17 || b[0] != tagChallengeAck {
		return h.fail(PhaseRecvAck, firstByte(b), ErrUnexpectedMessage)
	}
	want := digest(h.p.cookie, ours)
	if !bytes.Equal(b[1:], want[:]) {
		return h.fail(PhaseRecvAck, b[0], ErrWrongCookie)
	}
	return nil
}

// ---- side B ----

// recvName: 'N' Flags:64 Creation:32 NLen:16 Name, or the old 'n' Version:16 Flags:32 Name
// (v5 true: the complement follows our challenge). A peer lacking our mandatory flags gets
// 's' "not_allowed".
func (h *handshaker) recvName() (peer peerInfo, v5 bool, err error) {
	b, err := h.read(PhaseRecvName)
	if errors.Is(err, errTLSRecord) {
		return peerInfo{}, false, h.fail(PhaseRecvName, 0, errPeerDialledTLS)
	}
	if err != nil {
		return peerInfo{}, false, err
	}
	switch {
	case b[0] == tagNameV6 && len(b) >= 15:
		peer.flags = Flags(binary.BigEndian.Uint64(b[1:]))
		peer.creation = binary.BigEndian.Uint32(b[9:])
		nlen := int(binary.BigEndian.Uint16(b[13:]))
		if len(b) != 15+nlen {
			return peerInfo{}, false, h.fail(PhaseRecvName, b[0], fmt.Errorf("%w: name length %d in %d bytes", ErrUnexpectedMessage, nlen, len(b)))
		}
		peer.name = string(b[15:])
	case b[0] == tagNameV5 && len(b) >= 7:
		peer.flags = Flags(binary.BigEndian.Uint32(b[3:]))
		peer.name = string(b[7:])
		if !peer.flags.Has(FlagHandshake23) {
			return peerInfo{}, false, h.fail(PhaseRecvName, b[0], &FlagError{Missing: FlagHandshake23, Offered: h.p.flags})
		}
		v5 = true
	default:
		return peerInfo{}, false, h.fail(PhaseRecvName, b[0], ErrUnexpectedMessage)
	}
	h.peer = peer.name
	if _, _, err := SplitNodeName(peer.name); err != nil {
		return peerInfo{}, false, h.fail(PhaseRecvName, b[0], err)
	}
	if !v5 {
		if missing := peer.flags.Missing(h.p.require); missing != 0 {
			h.write(PhaseSendStatus, []byte("snot_allowed"))
			return peerInfo{}, false, h.fail(PhaseRecvName, b[0], &FlagError{Missing: missing, Offered: h.p.flags})
		}
	}
	return peer, v5, nil
}

// sendStatus: 's' "ok".
func (h *handshaker) sendStatus() error {
	return h.write(PhaseSendStatus, []byte("sok"))
}

// sendChallenge: 'N' Flags:64 Challenge:32 Creation:32 NLen:16 Name. It returns our challenge.
func (h *handshaker) sendChallenge() (uint32, error) {
	ours, err := newChallenge(h.p.rand)
	if err != nil {
		return 0, h.fail(PhaseSendChallenge, 0, err)
	}
	msg := make([]byte, 0, 19+len(h.p.name))
	msg = append(msg, tagChallengeV6)
	msg = binary.BigEndian.AppendUint64(msg, uint64(h.p.flags))
	msg = binary.BigEndian.AppendUint32(msg, ours)
	msg = binary.BigEndian.AppendUint32(msg, h.p.creation)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(h.p.name)))
	msg = append(msg, h.p.name...)
	return ours, h.write(PhaseSendChallenge, msg)
}

// recvComplement: 'c' FlagsHigh:32 Creation:32, after an old 'n' name message.
func (h *handshaker) recvComplement(peer *peerInfo) error {
	b, err := h.read(PhaseRecvComplement)
	if err != nil {
		return err
	}
	if b[0] != tagComplement || len(b) != 9 {
		return h.fail(PhaseRecvComplement, b[0], ErrUnexpectedMessage)
	}
	peer.flags |= Flags(binary.BigEndian.Uint32(b[1:])) << 32
	peer.creation = binary.BigEndian.Uint32(b[5:])
	if missing := peer.flags.Missing(h.p.require); missing != 0 {
		return h.fail(PhaseRecvComplement, b[0], &FlagError{Missing: missing, Offered: h.p.flags})
	}
	return nil
}

// recvChallengeReply: 'r' Challenge:32 Digest:128. It checks the digest of our challenge and
// returns the peer's.
func (h *handshaker) recvChallengeReply(ours uint32) (uint32, error) {
	b, err := h.read(PhaseRecvReply)
	if err != nil {
		return 0, err
	}
	if b[0] != tagChallengeRepl || len(b) != 21 {
		return 0, h.fail(PhaseRecvReply, b[0], ErrUnexpectedMessage)
	}
	want := digest(h.p.cookie, ours)
	if !bytes.Equal(b[5:21], want[:]) {
		return 0, h.fail(PhaseRecvReply, b[0], ErrWrongCookie)
	}
	return binary.BigEndian.Uint32(b[1:]), nil
}

// sendChallengeAck: 'a' Digest:128, the digest of the peer's challenge.
func (h *handshaker) sendChallengeAck(theirs uint32) error {
	sum := digest(h.p.cookie, theirs)
	return h.write(PhaseSendAck, append([]byte{tagChallengeAck}, sum[:]...))
}

func isConnReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}
