package node

// Exit reasons cross between Ergo errors and Erlang terms:
//
//	Ergo                         Erlang
//	gen.TerminateReasonNormal    normal
//	gen.TerminateReasonKill      killed (kill when sent as an EXIT2 reason)
//	gen.TerminateReasonShutdown  shutdown
//	gen.ErrProcessUnknown        noproc
//	gen.ErrNoConnection          noconnection
//	*ExitReason (wrapped or not) the Erlang reason it carries
//	any other error              its text as a binary
//
// An Erlang reason with no Ergo counterpart becomes an *ExitReason carrying the term.

import (
	"encoding/binary"
	"errors"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
)

// ExitReason is an Erlang exit reason with no Ergo counterpart. Term is the decoded reason (a
// value of package etf), Raw its encoding without the version byte.
type ExitReason struct {
	Term any
	Raw  []byte
	text string
}

func (e *ExitReason) Error() string { return e.text }

func encodeReason(err error) []byte {
	switch {
	case err == nil, errors.Is(err, gen.TerminateReasonNormal):
		return appendAtom(nil, "normal")
	case errors.Is(err, gen.TerminateReasonKill):
		return appendAtom(nil, "killed")
	case errors.Is(err, gen.TerminateReasonShutdown):
		return appendAtom(nil, "shutdown")
	case errors.Is(err, gen.ErrProcessUnknown):
		return appendAtom(nil, "noproc")
	case errors.Is(err, gen.ErrNoConnection):
		return appendAtom(nil, "noconnection")
	}
	var er *ExitReason
	if errors.As(err, &er) && er.Raw != nil {
		return er.Raw // an Erlang reason, passed on as it came (Ergo may have wrapped it)
	}
	s := err.Error()
	dst := append([]byte(nil), etf.TagBinary)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func decodeReason(raw []byte) error {
	r := &termReader{b: raw}
	if a, err := r.atom(); err == nil && r.off == len(raw) {
		switch a {
		case "normal":
			return gen.TerminateReasonNormal
		case "kill", "killed":
			return gen.TerminateReasonKill
		case "shutdown":
			return gen.TerminateReasonShutdown
		case "noproc":
			return gen.ErrProcessUnknown
		case "noconnection":
			return gen.ErrNoConnection
		}
		return &ExitReason{Term: a, Raw: raw, text: a}
	}
	term, err := decodeBareTerm(raw)
	if err != nil {
		return &ExitReason{Raw: raw, text: "unreadable exit reason"}
	}
	return &ExitReason{Term: term, Raw: raw, text: formatTerm(term)}
}
