package etf

import (
	"fmt"
	"math"

	"ergo.services/ergo/gen"
)

// Mapping of Ergo v3 identifiers (ergo.services/ergo/gen) to terms. The encoder accepts gen.Atom, gen.PID,
// gen.Ref and gen.Alias directly; a Decoder made with WithErgoTypes returns gen.Atom, gen.PID and gen.Ref
// in place of Atom, Pid and Ref.
//
// gen.PID{Node, ID, Creation} <-> NEW_PID_EXT. Erlang's external pid has two 32-bit words, ID and Serial
// (a local pid prints as <0.ID.Serial>; BEAM keeps 28 bits of ID and the rest in Serial). Ergo's ID is one
// uint64: its low 32 bits are the ID word and its high 32 bits the Serial word, the split Ergo's own
// Erlang protocol uses. Creation must fit in 32 bits and not be negative.
//
// gen.Ref{Node, Creation, ID [3]uint64} and gen.Alias <-> NEWER_REFERENCE_EXT. Ergo makes references of
// three words, each below 2^32 (MakeRef puts 18 bits in ID[0], as BEAM does), and those map word for word:
// ID[i] is the i-th 32-bit word. Erlang references can carry two more words (OTP 26 pid-refs and aliases
// have five); they travel in the high halves: word 3 in the high 32 bits of ID[0], word 4 in those of ID[1].
// Going back to Erlang the reference has 5 words if the high half of ID[1] is set, 4 if only that of ID[0]
// is, 3 otherwise. A Ref of one or two words (REFERENCE_EXT of old nodes) becomes a three-word gen.Ref with
// zero words appended. The high half of ID[2] has no place on the wire: it must be zero.

// PidFromGen converts an Ergo pid. It fails only when Creation is outside 0..2^32-1.
func PidFromGen(p gen.PID) (Pid, error) {
	if p.Creation < 0 || p.Creation > math.MaxUint32 {
		return Pid{}, encodeError(p, fmt.Errorf("%w: creation %d outside 32 bits", ErrInvalidValue, p.Creation))
	}
	return Pid{Node: Atom(p.Node), ID: uint32(p.ID), Serial: uint32(p.ID >> 32), Creation: uint32(p.Creation)}, nil
}

// Gen converts a pid to Ergo's form.
func (p Pid) Gen() gen.PID {
	return gen.PID{Node: gen.Atom(p.Node), ID: uint64(p.Serial)<<32 | uint64(p.ID), Creation: int64(p.Creation)}
}

// RefFromGen converts an Ergo reference (or alias, via gen.Ref(alias)).
func RefFromGen(r gen.Ref) (Ref, error) {
	if r.Creation < 0 || r.Creation > math.MaxUint32 {
		return Ref{}, encodeError(r, fmt.Errorf("%w: creation %d outside 32 bits", ErrInvalidValue, r.Creation))
	}
	if r.ID[2]>>32 != 0 {
		return Ref{}, encodeError(r, fmt.Errorf("%w: ID[2] does not fit 32 bits", ErrInvalidValue))
	}
	out := Ref{Node: Atom(r.Node), Creation: uint32(r.Creation), Len: 3}
	out.ID[0], out.ID[1], out.ID[2] = uint32(r.ID[0]), uint32(r.ID[1]), uint32(r.ID[2])
	out.ID[3], out.ID[4] = uint32(r.ID[0]>>32), uint32(r.ID[1]>>32)
	switch {
	case out.ID[4] != 0:
		out.Len = 5
	case out.ID[3] != 0:
		out.Len = 4
	}
	return out, nil
}

// Gen converts a reference to Ergo's form (see the mapping above). Words past Len are taken as zero.
func (r Ref) Gen() gen.Ref {
	var w [maxRefWords]uint32
	copy(w[:], r.Words())
	return gen.Ref{
		Node:     gen.Atom(r.Node),
		Creation: int64(r.Creation),
		ID:       [3]uint64{uint64(w[3])<<32 | uint64(w[0]), uint64(w[4])<<32 | uint64(w[1]), uint64(w[2])},
	}
}

// GenAlias converts a reference to an Ergo alias (an alias is a reference on the wire).
func (r Ref) GenAlias() gen.Alias { return gen.Alias(r.Gen()) }
