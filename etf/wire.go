package etf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"reflect"
)

// The messages of the Pharos wire contract (docs/wire.md) besides the records themselves
// (records.go): how a record travels in each delivery mode, and the acknowledged mode's batch and
// acknowledgement. This file and records*.go are the only places that spell them.
//
//	payload:  term_to_binary(Record), sent as a binary               AppendPayload
//	subject:  {Name, term_to_binary(Record)}                         SubjectHead, AppendSubject
//	acked:    {pharos_batch, ReplyTo, SourceId, FirstSeq, [Bin]}     AppendBatchHead, AppendBatch
//	          {pharos_ack, SourceId, NextSeq} back to ReplyTo        ParseAck

// Atoms of the acknowledged mode.
const (
	BatchTag = "pharos_batch"
	AckTag   = "pharos_ack"
)

// ErrNotAck is returned by ParseAck for a term that is not tagged pharos_ack at all (another
// message); a term tagged pharos_ack that cannot be read gives an *AckError.
var ErrNotAck = errors.New("etf: not a pharos_ack")

// AckError says why a term tagged pharos_ack is not a valid {pharos_ack, SourceId, NextSeq}.
type AckError struct {
	Reason string // "arity", "source_id" or "next_seq"
	Term   any    // the offending element, or the whole term for "arity"
}

func (e *AckError) Error() string {
	return fmt.Sprintf("etf: malformed pharos_ack: bad %s: %v", e.Reason, e.Term)
}

// Ack is {pharos_ack, SourceId, NextSeq}: every sequence number below NextSeq is processed.
type Ack struct {
	SourceID string
	NextSeq  uint64
}

// ParseAck reads a decoded term as a pharos_ack. The tag may be an Atom or, from a decoder made
// WithErgoTypes, a gen.Atom (any string type named pharos_ack); SourceId a binary ([]byte or
// string); NextSeq a non-negative integer that fits 64 bits (int64, any Go integer type, or a
// *big.Int). A term whose first element is not the atom pharos_ack gives ErrNotAck; a pharos_ack
// of the wrong arity, a SourceId that is not a binary or a NextSeq that is negative, too large or
// not an integer gives an *AckError.
func ParseAck(term any) (Ack, error) {
	t, ok := term.(Tuple)
	if !ok || len(t) == 0 || !isAtomNamed(t[0], AckTag) {
		return Ack{}, ErrNotAck
	}
	if len(t) != 3 {
		return Ack{}, &AckError{Reason: "arity", Term: term}
	}
	var ack Ack
	switch id := t[1].(type) {
	case []byte:
		ack.SourceID = string(id)
	case string:
		ack.SourceID = id
	default:
		return Ack{}, &AckError{Reason: "source_id", Term: t[1]}
	}
	next, ok := nonNegative(t[2])
	if !ok {
		return Ack{}, &AckError{Reason: "next_seq", Term: t[2]}
	}
	ack.NextSeq = next
	return ack, nil
}

// isAtomNamed reports whether v is an atom (Atom, or another string type such as gen.Atom, but
// not a string, which is a binary) named name.
func isAtomNamed(v any, name string) bool {
	if a, ok := v.(Atom); ok {
		return string(a) == name
	}
	rv := reflect.ValueOf(v)
	return rv.IsValid() && rv.Kind() == reflect.String && rv.Type() != reflect.TypeOf("") && rv.String() == name
}

func nonNegative(v any) (uint64, bool) {
	switch n := v.(type) {
	case int64:
		return uint64(n), n >= 0
	case int:
		return uint64(n), n >= 0
	case int32:
		return uint64(n), n >= 0
	case int16:
		return uint64(n), n >= 0
	case int8:
		return uint64(n), n >= 0
	case uint64:
		return n, true
	case uint:
		return uint64(n), true
	case uint32:
		return uint64(n), true
	case uint16:
		return uint64(n), true
	case uint8:
		return uint64(n), true
	case *big.Int:
		if n == nil || !n.IsUint64() {
			return 0, false
		}
		return n.Uint64(), true
	default:
		return 0, false
	}
}

// AppendPayload appends record, a term_to_binary result, as a BINARY_EXT (without the version
// byte): the payload mode's message and an element of a batch's list.
func AppendPayload(dst, record []byte) []byte { return appendBinary(dst, record) }

// AppendMetricPayload appends m as AppendPayload would append term_to_binary(m), encoding it in
// place (no intermediate copy): the payload mode's message, or a subject's Body after
// SubjectHead.
func AppendMetricPayload(dst []byte, m *Metric) ([]byte, error) {
	start := len(dst)
	dst = append(dst, TagBinary, 0, 0, 0, 0)
	dst, err := AppendMetric(dst, m)
	if err != nil {
		return dst[:start], err
	}
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-5))
	return dst, nil
}

// SubjectHead is the fixed front of the subject mode's message {Name, Body} for the atom name:
// the version byte, the tuple's header and the atom. Encode it once per target.
func SubjectHead(name string) ([]byte, error) {
	dst := []byte{TagVersion, TagSmallTuple, 2}
	return appendAtom(dst, name)
}

// AppendSubject appends the subject mode's message for record after head (from SubjectHead).
func AppendSubject(dst, head, record []byte) []byte {
	return AppendPayload(append(dst, head...), record)
}

// AppendBatchHead appends the front of {pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads}, the
// version byte included, up to the list of payloads. replyTo is a Pid or a gen.PID.
func AppendBatchHead(dst []byte, replyTo any, sourceID string, firstSeq uint64) ([]byte, error) {
	dst = append(dst, TagVersion, TagSmallTuple, 5)
	var err error
	if dst, err = appendAtom(dst, BatchTag); err != nil {
		return dst, err
	}
	if dst, err = AppendTerm(dst, replyTo); err != nil {
		return dst, err
	}
	dst = appendBinary(dst, sourceID)
	return appendUint(dst, firstSeq), nil
}

// AppendBatch appends a whole batch message: head (from AppendBatchHead), then the payloads as a
// list of binaries. No payloads is the resynchronisation probe ([]).
func AppendBatch(dst, head []byte, payloads [][]byte) []byte {
	dst = append(dst, head...)
	if len(payloads) > 0 {
		dst = append(dst, TagList)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(payloads)))
		for _, p := range payloads {
			dst = AppendPayload(dst, p)
		}
	}
	return append(dst, TagNil)
}
