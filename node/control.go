package node

// Control messages (erl_dist_protocol.md, "Protocol between Connected Nodes"). After the
// handshake every non-tick frame is 'p' | Control | [Message], each term with its own 131
// version byte. One Go type per control message below, each with its op code; the *_TT
// (trace token) forms are read as their plain forms with the token dropped, and the PAYLOAD_*
// forms (reason carried as the message) as EXIT, EXIT2 and MONITOR_P_EXIT.

import (
	"fmt"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
)

// Op is a control message's operation code, the first element of its tuple.
type Op int

// Operation codes.
const (
	OpLink                Op = 1
	OpSend                Op = 2
	OpExit                Op = 3
	OpUnlink              Op = 4 // obsolete since OTP 26; read, never sent
	OpNodeLink            Op = 5
	OpRegSend             Op = 6
	OpGroupLeader         Op = 7
	OpExit2               Op = 8
	OpSendTT              Op = 12
	OpExitTT              Op = 13
	OpRegSendTT           Op = 16
	OpExit2TT             Op = 18
	OpMonitorP            Op = 19
	OpDemonitorP          Op = 20
	OpMonitorPExit        Op = 21
	OpSendSender          Op = 22
	OpSendSenderTT        Op = 23
	OpPayloadExit         Op = 24
	OpPayloadExitTT       Op = 25
	OpPayloadExit2        Op = 26
	OpPayloadExit2TT      Op = 27
	OpPayloadMonitorPExit Op = 28
	OpSpawnRequest        Op = 29
	OpSpawnRequestTT      Op = 30
	OpSpawnReply          Op = 31
	OpSpawnReplyTT        Op = 32
	OpAliasSend           Op = 33
	OpAliasSendTT         Op = 34
	OpUnlinkID            Op = 35
	OpUnlinkIDAck         Op = 36
)

// Control is one control message.
type Control interface {
	Op() Op
	// appendTerm appends the control tuple with its 131 version byte.
	appendTerm(dst []byte) []byte
}

// Proc names the target of a monitor: a pid, or a registered name (Name != "") on the node.
type Proc struct {
	PID  gen.PID
	Name gen.Atom
}

func (p Proc) appendTerm(dst []byte) []byte {
	if p.Name != "" {
		return appendAtom(dst, string(p.Name))
	}
	return appendPid(dst, p.PID)
}

func (p Proc) String() string {
	if p.Name != "" {
		return string(p.Name)
	}
	return p.PID.String()
}

// Link is LINK {1, FromPid, ToPid}.
type Link struct{ From, To gen.PID }

// Send is SEND {2, Unused, ToPid}, followed by the message.
type Send struct{ To gen.PID }

// Exit is EXIT {3, FromPid, ToPid, Reason}: a linked process ended. Reason is the encoded
// reason term without its version byte.
type Exit struct {
	From, To gen.PID
	Reason   []byte
}

// Unlink is the obsolete UNLINK {4, FromPid, ToPid}.
type Unlink struct{ From, To gen.PID }

// RegSend is REG_SEND {6, FromPid, Unused, ToName}, followed by the message.
type RegSend struct {
	From gen.PID
	To   gen.Atom
}

// Exit2 is EXIT2 {8, FromPid, ToPid, Reason}: an exit signal (erlang:exit/2).
type Exit2 struct {
	From, To gen.PID
	Reason   []byte
}

// MonitorP is MONITOR_P {19, FromPid, ToProc, Ref}.
type MonitorP struct {
	From gen.PID
	To   Proc
	Ref  gen.Ref
}

// DemonitorP is DEMONITOR_P {20, FromPid, ToProc, Ref}.
type DemonitorP struct {
	From gen.PID
	To   Proc
	Ref  gen.Ref
}

// MonitorPExit is MONITOR_P_EXIT {21, FromProc, ToPid, Ref, Reason}: a monitored process ended.
type MonitorPExit struct {
	From   Proc
	To     gen.PID
	Ref    gen.Ref
	Reason []byte
}

// SendSender is SEND_SENDER {22, FromPid, ToPid}, followed by the message.
type SendSender struct{ From, To gen.PID }

// AliasSend is ALIAS_SEND {33, FromPid, Alias}, followed by the message.
type AliasSend struct {
	From  gen.PID
	Alias gen.Ref
}

// UnlinkID is UNLINK_ID {35, Id, FromPid, ToPid}; the receiver answers with UnlinkIDAck.
type UnlinkID struct {
	ID       uint64
	From, To gen.PID
}

// UnlinkIDAck is UNLINK_ID_ACK {36, Id, FromPid, ToPid}.
type UnlinkIDAck struct {
	ID       uint64
	From, To gen.PID
}

// Unknown is any other control message, kept only to be logged and ignored.
type Unknown struct{ Code Op }

func (Link) Op() Op         { return OpLink }
func (Send) Op() Op         { return OpSend }
func (Exit) Op() Op         { return OpExit }
func (Unlink) Op() Op       { return OpUnlink }
func (RegSend) Op() Op      { return OpRegSend }
func (Exit2) Op() Op        { return OpExit2 }
func (MonitorP) Op() Op     { return OpMonitorP }
func (DemonitorP) Op() Op   { return OpDemonitorP }
func (MonitorPExit) Op() Op { return OpMonitorPExit }
func (SendSender) Op() Op   { return OpSendSender }
func (AliasSend) Op() Op    { return OpAliasSend }
func (UnlinkID) Op() Op     { return OpUnlinkID }
func (UnlinkIDAck) Op() Op  { return OpUnlinkIDAck }
func (u Unknown) Op() Op    { return u.Code }

func head(dst []byte, arity int, op Op) []byte {
	dst = append(dst, etf.TagVersion)
	dst = appendTupleHeader(dst, arity)
	return appendInt(dst, int64(op))
}

func (m Link) appendTerm(dst []byte) []byte {
	return appendPid(appendPid(head(dst, 3, OpLink), m.From), m.To)
}

func (m Send) appendTerm(dst []byte) []byte {
	return appendPid(appendAtom(head(dst, 3, OpSend), ""), m.To)
}

func (m Exit) appendTerm(dst []byte) []byte {
	return append(appendPid(appendPid(head(dst, 4, OpExit), m.From), m.To), m.Reason...)
}

func (m Unlink) appendTerm(dst []byte) []byte {
	return appendPid(appendPid(head(dst, 3, OpUnlink), m.From), m.To)
}

func (m RegSend) appendTerm(dst []byte) []byte {
	return appendAtom(appendAtom(appendPid(head(dst, 4, OpRegSend), m.From), ""), string(m.To))
}

func (m Exit2) appendTerm(dst []byte) []byte {
	return append(appendPid(appendPid(head(dst, 4, OpExit2), m.From), m.To), m.Reason...)
}

func (m MonitorP) appendTerm(dst []byte) []byte {
	return appendRef(m.To.appendTerm(appendPid(head(dst, 4, OpMonitorP), m.From)), m.Ref)
}

func (m DemonitorP) appendTerm(dst []byte) []byte {
	return appendRef(m.To.appendTerm(appendPid(head(dst, 4, OpDemonitorP), m.From)), m.Ref)
}

func (m MonitorPExit) appendTerm(dst []byte) []byte {
	dst = appendRef(appendPid(m.From.appendTerm(head(dst, 5, OpMonitorPExit)), m.To), m.Ref)
	return append(dst, m.Reason...)
}

func (m SendSender) appendTerm(dst []byte) []byte {
	return appendPid(appendPid(head(dst, 3, OpSendSender), m.From), m.To)
}

func (m AliasSend) appendTerm(dst []byte) []byte {
	return appendRef(appendPid(head(dst, 3, OpAliasSend), m.From), m.Alias)
}

func (m UnlinkID) appendTerm(dst []byte) []byte {
	return appendPid(appendPid(appendInt(head(dst, 4, OpUnlinkID), int64(m.ID)), m.From), m.To)
}

func (m UnlinkIDAck) appendTerm(dst []byte) []byte {
	return appendPid(appendPid(appendInt(head(dst, 4, OpUnlinkIDAck), int64(m.ID)), m.From), m.To)
}

func (m Unknown) appendTerm(dst []byte) []byte {
	return head(dst, 1, m.Code)
}

// ControlError reports a control message that could not be read. The connection logs it and
// carries on; it never ends the connection.
type ControlError struct {
	Op  Op // 0 if the op code itself was unreadable
	Err error
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("control message (op %d): %v", e.Op, e.Err)
}

func (e *ControlError) Unwrap() error { return e.Err }

// decodeControl reads the control message at the start of body (the bytes after 'p') and
// returns it with the message that follows (with its 131 byte; empty if none).
func decodeControl(body []byte) (Control, []byte, error) {
	r := &termReader{b: body}
	var op Op
	fail := func(err error) (Control, []byte, error) {
		return nil, nil, &ControlError{Op: op, Err: err}
	}
	if err := r.version(); err != nil {
		return fail(err)
	}
	arity, err := r.tupleHeader()
	if err != nil {
		return fail(err)
	}
	if arity < 1 {
		return fail(r.fail("empty control tuple"))
	}
	code, err := r.integer()
	if err != nil {
		return fail(err)
	}
	op = Op(code)
	want := controlArity(op)
	if want == 0 {
		return Unknown{Code: op}, nil, nil
	}
	if arity != want {
		return fail(r.fail("arity %d, want %d", arity, want))
	}
	pids := func(n int) ([]gen.PID, error) {
		out := make([]gen.PID, n)
		for i := range out {
			p, err := r.pid()
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	}
	skipToken := func() error {
		switch op {
		case OpSendTT, OpExitTT, OpRegSendTT, OpExit2TT, OpSendSenderTT, OpPayloadExitTT,
			OpPayloadExit2TT, OpAliasSendTT:
			_, err := r.skip()
			return err
		}
		return nil
	}
	rawTerm := func() ([]byte, error) {
		b, err := r.skip()
		return append([]byte(nil), b...), err
	}
	payloadReason := func() ([]byte, error) {
		pr := &termReader{b: body[r.off:]}
		if err := pr.version(); err != nil {
			return nil, err
		}
		return copyNextTerm(pr)
	}
	rest := func() []byte { return body[r.off:] }

	switch op {
	case OpLink, OpUnlink:
		p, err := pids(2)
		if err != nil {
			return fail(err)
		}
		if op == OpUnlink {
			return Unlink{From: p[0], To: p[1]}, nil, nil
		}
		return Link{From: p[0], To: p[1]}, nil, nil
	case OpSend, OpSendTT:
		if _, err := r.skip(); err != nil {
			return fail(err)
		}
		to, err := r.pid()
		if err != nil {
			return fail(err)
		}
		if err := skipToken(); err != nil {
			return fail(err)
		}
		return Send{To: to}, rest(), nil
	case OpSendSender, OpSendSenderTT:
		p, err := pids(2)
		if err != nil {
			return fail(err)
		}
		if err := skipToken(); err != nil {
			return fail(err)
		}
		return SendSender{From: p[0], To: p[1]}, rest(), nil
	case OpRegSend, OpRegSendTT:
		from, err := r.pid()
		if err != nil {
			return fail(err)
		}
		if _, err := r.skip(); err != nil {
			return fail(err)
		}
		name, err := r.atom()
		if err != nil {
			return fail(err)
		}
		if err := skipToken(); err != nil {
			return fail(err)
		}
		return RegSend{From: from, To: gen.Atom(name)}, rest(), nil
	case OpExit, OpExitTT, OpExit2, OpExit2TT, OpPayloadExit, OpPayloadExitTT, OpPayloadExit2, OpPayloadExit2TT:
		p, err := pids(2)
		if err != nil {
			return fail(err)
		}
		if err := skipToken(); err != nil {
			return fail(err)
		}
		var reason []byte
		switch op {
		case OpPayloadExit, OpPayloadExitTT, OpPayloadExit2, OpPayloadExit2TT:
			reason, err = payloadReason()
		default:
			reason, err = rawTerm()
		}
		if err != nil {
			return fail(err)
		}
		switch op {
		case OpExit2, OpExit2TT, OpPayloadExit2, OpPayloadExit2TT:
			return Exit2{From: p[0], To: p[1], Reason: reason}, nil, nil
		}
		return Exit{From: p[0], To: p[1], Reason: reason}, nil, nil
	case OpMonitorP, OpDemonitorP:
		from, err := r.pid()
		if err != nil {
			return fail(err)
		}
		to, err := r.proc()
		if err != nil {
			return fail(err)
		}
		ref, err := r.ref()
		if err != nil {
			return fail(err)
		}
		if op == OpDemonitorP {
			return DemonitorP{From: from, To: to, Ref: ref}, nil, nil
		}
		return MonitorP{From: from, To: to, Ref: ref}, nil, nil
	case OpMonitorPExit, OpPayloadMonitorPExit:
		from, err := r.proc()
		if err != nil {
			return fail(err)
		}
		to, err := r.pid()
		if err != nil {
			return fail(err)
		}
		ref, err := r.ref()
		if err != nil {
			return fail(err)
		}
		var reason []byte
		if op == OpPayloadMonitorPExit {
			reason, err = payloadReason()
		} else {
			reason, err = rawTerm()
		}
		if err != nil {
			return fail(err)
		}
		return MonitorPExit{From: from, To: to, Ref: ref, Reason: reason}, nil, nil
	case OpAliasSend, OpAliasSendTT:
		from, err := r.pid()
		if err != nil {
			return fail(err)
		}
		alias, err := r.ref()
		if err != nil {
			return fail(err)
		}
		if err := skipToken(); err != nil {
			return fail(err)
		}
		return AliasSend{From: from, Alias: alias}, rest(), nil
	case OpUnlinkID, OpUnlinkIDAck:
		id, err := r.integer()
		if err != nil {
			return fail(err)
		}
		p, err := pids(2)
		if err != nil {
			return fail(err)
		}
		if op == OpUnlinkIDAck {
			return UnlinkIDAck{ID: uint64(id), From: p[0], To: p[1]}, nil, nil
		}
		return UnlinkID{ID: uint64(id), From: p[0], To: p[1]}, nil, nil
	}
	return Unknown{Code: op}, nil, nil
}

func copyNextTerm(r *termReader) ([]byte, error) {
	b, err := r.skip()
	return append([]byte(nil), b...), err
}

// proc reads a monitor target: a pid or an atom.
func (r *termReader) proc() (Proc, error) {
	tag, err := r.peek()
	if err != nil {
		return Proc{}, err
	}
	switch tag {
	case etf.TagNewPid, etf.TagPid:
		p, err := r.pid()
		return Proc{PID: p}, err
	}
	a, err := r.atom()
	return Proc{Name: gen.Atom(a)}, err
}

// appendFrame appends one complete connection frame: length, 'p', control and, if msg is not
// nil, the message term (msg must start with its 131 version byte).
func appendFrame(dst []byte, c Control, msg []byte) []byte {
	dst, start := beginFrame(dst)
	dst = c.appendTerm(dst)
	dst = append(dst, msg...)
	return finishFrame(dst, start)
}

// controlArity is the tuple arity of each known op; 0 for ops this package does not read.
func controlArity(op Op) int {
	switch op {
	case OpLink, OpSend, OpUnlink, OpSendSender, OpPayloadExit, OpPayloadExit2, OpAliasSend:
		return 3
	case OpExit, OpRegSend, OpExit2, OpSendTT, OpMonitorP, OpDemonitorP, OpSendSenderTT,
		OpPayloadExitTT, OpPayloadExit2TT, OpPayloadMonitorPExit, OpAliasSendTT, OpUnlinkID, OpUnlinkIDAck:
		return 4
	case OpExitTT, OpRegSendTT, OpExit2TT, OpMonitorPExit:
		return 5
	}
	return 0
}
