package node

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

var (
	pidA = gen.PID{Node: "a@h", ID: 1<<32 | 77, Creation: 5}
	pidB = gen.PID{Node: "brain@127.0.0.1", ID: 1234, Creation: 1700000000}
	refA = gen.Ref{Node: "a@h", Creation: 5, ID: [3]uint64{1, 2, 3}}
	refV = gen.Ref{Node: "brain@127.0.0.1", Creation: 9, ID: [3]uint64{7<<32 | 1, 8<<32 | 2, 3}}
)

func controls() []Control {
	reason := appendAtom(nil, "normal")
	return []Control{
		Link{From: pidA, To: pidB},
		Send{To: pidB},
		Exit{From: pidA, To: pidB, Reason: reason},
		Unlink{From: pidA, To: pidB},
		RegSend{From: pidA, To: "pharos_brain"},
		Exit2{From: pidA, To: pidB, Reason: encodeReason(errors.New("custom"))},
		MonitorP{From: pidA, To: Proc{Name: "pharos_brain"}, Ref: refA},
		MonitorP{From: pidA, To: Proc{PID: pidB}, Ref: refV},
		DemonitorP{From: pidA, To: Proc{Name: "x"}, Ref: refA},
		MonitorPExit{From: Proc{Name: "x"}, To: pidA, Ref: refA, Reason: appendAtom(nil, "noproc")},
		SendSender{From: pidA, To: pidB},
		AliasSend{From: pidA, Alias: refV},
		UnlinkID{ID: 1 << 40, From: pidA, To: pidB},
		UnlinkIDAck{ID: 3, From: pidB, To: pidA},
	}
}

func TestControlRoundTrip(t *testing.T) {
	msg := []byte{131, 100, 0, 2, 'h', 'i'}
	for _, c := range controls() {
		t.Run(strconv.Itoa(int(c.Op())), func(t *testing.T) {
			enc := append(c.appendTerm(nil), msg...)
			got, rest, err := decodeControl(enc)
			require.NoError(t, err)
			assert.Equal(t, c, got)
			switch c.(type) {
			case Send, SendSender, RegSend, AliasSend:
				assert.Equal(t, msg, rest)
			}
		})
	}
}

func TestControlEveryPrefixFailsCleanly(t *testing.T) {
	for _, c := range controls() {
		enc := c.appendTerm(nil)
		for i := 0; i < len(enc); i++ {
			_, _, err := decodeControl(enc[:i])
			require.Error(t, err, "%T prefix %d", c, i)
			var ce *ControlError
			require.ErrorAs(t, err, &ce)
			if i > 0 {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "%T prefix %d", c, i)
			}
		}
	}
}

func TestControlUnknownOpIsNotAnError(t *testing.T) {
	got, _, err := decodeControl(Unknown{Code: 99}.appendTerm(nil))
	require.NoError(t, err)
	assert.Equal(t, Unknown{Code: 99}, got)
}

func TestControlTraceTokenAndPayloadForms(t *testing.T) {
	// SEND_TT {12, '', ToPid, Token}, PAYLOAD_EXIT {24, From, To} + Reason
	token := appendTupleHeader(nil, 2)
	token = appendAtom(appendInt(token, 1), "label")
	enc := appendPid(appendAtom(head(nil, 4, OpSendTT), ""), pidB)
	enc = append(enc, token...)
	got, rest, err := decodeControl(append(enc, 131, 106))
	require.NoError(t, err)
	assert.Equal(t, Send{To: pidB}, got)
	assert.Equal(t, []byte{131, 106}, rest)

	enc = appendPid(appendPid(head(nil, 3, OpPayloadExit), pidA), pidB)
	enc = append(enc, 131)
	enc = appendAtom(enc, "killed")
	got, _, err = decodeControl(enc)
	require.NoError(t, err)
	assert.Equal(t, Exit{From: pidA, To: pidB, Reason: appendAtom(nil, "killed")}, got)
}

// Control tuples written by real Erlang decode to the expected messages.
func TestControlFromErlang(t *testing.T) {
	rel := erltest.FromEnv(t)
	out := rel.Eval(t, `P = list_to_pid("<0.77.1>"), R = make_ref(),
		Bins = [term_to_binary({6, P, '', pharos_brain}), term_to_binary({19, P, pharos_brain, R}),
		        term_to_binary({35, 12345678901, P, P}), term_to_binary({3, P, P, {shutdown, <<"x">>}})],
		io:format("~w", [[binary_to_list(B) || B <- Bins]])`)
	var bins [][]byte
	for _, part := range strings.Split(strings.Trim(out, "[]"), "],[") {
		var b []byte
		for _, n := range strings.Split(strings.Trim(part, "[]"), ",") {
			v, err := strconv.Atoi(n)
			require.NoError(t, err)
			b = append(b, byte(v))
		}
		bins = append(bins, b)
	}
	require.Len(t, bins, 4)
	got, _, err := decodeControl(bins[0])
	require.NoError(t, err)
	reg := got.(RegSend)
	assert.Equal(t, gen.Atom("pharos_brain"), reg.To)
	assert.Equal(t, uint64(1)<<32|77, reg.From.ID)
	assert.Equal(t, gen.Atom("nonode@nohost"), reg.From.Node)
	got, _, err = decodeControl(bins[1])
	require.NoError(t, err)
	assert.Equal(t, Proc{Name: "pharos_brain"}, got.(MonitorP).To)
	got, _, err = decodeControl(bins[2])
	require.NoError(t, err)
	assert.Equal(t, uint64(12345678901), got.(UnlinkID).ID)
	got, _, err = decodeControl(bins[3])
	require.NoError(t, err)
	var er *ExitReason
	require.ErrorAs(t, decodeReason(got.(Exit).Reason), &er)
	assert.Contains(t, er.Error(), "shutdown")
}

func TestReasonMapping(t *testing.T) {
	for _, e := range []error{gen.TerminateReasonNormal, gen.TerminateReasonKill, gen.TerminateReasonShutdown,
		gen.ErrProcessUnknown, gen.ErrNoConnection} {
		assert.ErrorIs(t, decodeReason(encodeReason(e)), e)
	}
	var er *ExitReason
	require.ErrorAs(t, decodeReason(encodeReason(errors.New("boom"))), &er)
	assert.Equal(t, "boom", er.Error())
	require.ErrorAs(t, decodeReason([]byte{200}), &er)
}

func TestSkipMatchesTermLength(t *testing.T) {
	rel := erltest.FromEnv(t)
	out := rel.Eval(t, `T = {1, -5, 300, 1 bsl 70, 1.5, "str", [a|b], [1,2], #{k => [v]}, <<1,2>>, <<1:3>>,
		fun lists:map/2, make_ref(), self(), hd(erlang:ports()), 'atom', "", []},
		io:format("~w", [binary_to_list(term_to_binary(T))])`)
	var b []byte
	for _, n := range strings.Split(strings.Trim(out, "[]"), ",") {
		v, err := strconv.Atoi(n)
		require.NoError(t, err)
		b = append(b, byte(v))
	}
	r := &termReader{b: b[1:]}
	skipped, err := r.skip()
	require.NoError(t, err)
	assert.Equal(t, len(b)-1, len(skipped))
	for i := 1; i < len(b)-1; i++ {
		r := &termReader{b: b[1:i]}
		_, err := r.skip()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "prefix %d", i)
	}
}

func FuzzDecodeControl(f *testing.F) {
	for _, c := range controls() {
		f.Add(c.appendTerm(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, _, err := decodeControl(b)
		if err != nil || c == nil {
			return
		}
		if _, unknown := c.(Unknown); unknown {
			return
		}
		// what decodes re-encodes and decodes to the same message
		again, _, err := decodeControl(c.appendTerm(nil))
		require.NoError(t, err)
		assert.Equal(t, c, again)
	})
}
