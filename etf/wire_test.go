package etf

import (
	"errors"
	"math/big"
	"testing"

	"ergo.services/ergo/gen"
)

// TestParseAck: what a pharos_ack may look like on the wire, and every way it can be malformed
// (counted by the manager as ignored acknowledgements, reason "malformed").
func TestParseAck(t *testing.T) {
	huge := new(big.Int).Lsh(big.NewInt(1), 70)
	for _, tc := range []struct {
		name   string
		term   any
		want   Ack
		reason string // "" for a valid ack; "-" for ErrNotAck
	}{
		{"atom, binary, int64", Tuple{Atom("pharos_ack"), []byte("s"), int64(7)}, Ack{"s", 7}, ""},
		{"gen.Atom tag", Tuple{gen.Atom("pharos_ack"), []byte("s"), int64(0)}, Ack{"s", 0}, ""},
		{"string source", Tuple{Atom("pharos_ack"), "s", uint64(1 << 63)}, Ack{"s", 1 << 63}, ""},
		{"64-bit bignum", Tuple{Atom("pharos_ack"), []byte("s"), new(big.Int).SetUint64(1 << 63)}, Ack{"s", 1 << 63}, ""},
		{"another tag", Tuple{Atom("pharos_batch"), []byte("s"), int64(1)}, Ack{}, "-"},
		{"tag as a binary", Tuple{"pharos_ack", []byte("s"), int64(1)}, Ack{}, "-"},
		{"not a tuple", List{Atom("pharos_ack")}, Ack{}, "-"},
		{"empty tuple", Tuple{}, Ack{}, "-"},
		{"arity 2", Tuple{Atom("pharos_ack"), []byte("s")}, Ack{}, "arity"},
		{"arity 4", Tuple{Atom("pharos_ack"), []byte("s"), int64(1), int64(2)}, Ack{}, "arity"},
		{"atom source", Tuple{Atom("pharos_ack"), Atom("s"), int64(1)}, Ack{}, "source_id"},
		{"negative", Tuple{Atom("pharos_ack"), []byte("s"), int64(-1)}, Ack{}, "next_seq"},
		{"bignum", Tuple{Atom("pharos_ack"), []byte("s"), huge}, Ack{}, "next_seq"},
		{"negative bignum", Tuple{Atom("pharos_ack"), []byte("s"), new(big.Int).Neg(huge)}, Ack{}, "next_seq"},
		{"float", Tuple{Atom("pharos_ack"), []byte("s"), 1.0}, Ack{}, "next_seq"},
		{"atom", Tuple{Atom("pharos_ack"), []byte("s"), Atom("undefined")}, Ack{}, "next_seq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAck(tc.term)
			var ae *AckError
			switch {
			case tc.reason == "":
				if err != nil || got != tc.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
				}
			case tc.reason == "-":
				if !errors.Is(err, ErrNotAck) {
					t.Fatalf("got %v, want ErrNotAck", err)
				}
			case !errors.As(err, &ae) || ae.Reason != tc.reason:
				t.Fatalf("got %v, want an AckError for %s", err, tc.reason)
			}
		})
	}
}

// TestBatchAndSubjectDecode: the batch and subject messages decode to the terms docs/wire.md
// gives, for the probe and for a batch of records.
func TestBatchAndSubjectDecode(t *testing.T) {
	pid := Pid{Node: "pharos@host", ID: 7, Serial: 1, Creation: 3}
	for _, payloads := range [][][]byte{nil, {[]byte("a"), []byte("bc")}} {
		head, err := AppendBatchHead(nil, pid, "src", 1<<40)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(AppendBatch(nil, head, payloads))
		if err != nil {
			t.Fatal(err)
		}
		list := List(nil)
		for _, p := range payloads {
			list = append(list, p)
		}
		want := Tuple{Atom("pharos_batch"), pid, []byte("src"), int64(1 << 40), list}
		if !Equal(got, want) {
			t.Fatalf("batch %v, want %v", got, want)
		}
	}
	head, err := SubjectHead("pharos_brain")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(AppendSubject(nil, head, []byte{131, 106}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tuple{Atom("pharos_brain"), []byte{131, 106}}); !Equal(got, want) {
		t.Fatalf("subject %v, want %v", got, want)
	}
}

// TestAppendMetricPayload: encoding in place gives the bytes AppendPayload gives for the
// record's term_to_binary; a refused metric leaves dst as it was.
func TestAppendMetricPayload(t *testing.T) {
	m := Metric{Name: "cpu", Kind: Gauge, Value: 0.5, Tags: []Tag{{Key: "host", Value: "a"}}, TimestampMs: 7, Source: "s"}
	rec, err := AppendMetric(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendMetricPayload([]byte("x"), &m)
	if err != nil || string(got) != string(AppendPayload([]byte("x"), rec)) {
		t.Fatalf("got %v, %v", got, err)
	}
	bad := Metric{Name: "cpu", Kind: 0}
	if got, err := AppendMetricPayload([]byte("x"), &bad); err == nil || string(got) != "x" {
		t.Fatalf("invalid metric: %q, %v", got, err)
	}
}
