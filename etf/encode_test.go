package etf

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"ergo.services/ergo/gen"
)

func TestEncodeBytes(t *testing.T) {
	node := b(119, 3, "n@h")
	tests := []struct {
		name string
		v    any
		want []byte
	}{
		{"small_int", 255, b(97, 255)},
		{"int", 256, b(98, u32(256))},
		{"int_neg", int8(-1), b(98, u32(0xffffffff))},
		{"int_min32", int32(math.MinInt32), b(98, u32(0x80000000))},
		{"small_big_2p31", int64(1 << 31), b(110, 4, 0, 0, 0, 0, 0x80)},
		{"small_big_neg", int64(-1<<31 - 1), b(110, 4, 1, 1, 0, 0, 0x80)},
		{"small_big_min64", int64(math.MinInt64), b(110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0x80)},
		{"small_big_u64", uint64(math.MaxUint64), b(110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255)},
		{"big_fits", big.NewInt(3), b(97, 3)},
		{"big_2p64", bigPow2(64, false), b(110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)},
		{"large_big", bigPow2(2040, true), b(111, u32(256), 1, make([]byte, 255), 1)},
		{"float", 1.5, b(70, u32(0x3ff80000), u32(0))},
		{"float_negzero", math.Copysign(0, -1), b(70, u32(0x80000000), u32(0))},
		{"atom", Atom("ok"), b(119, 2, "ok")},
		{"atom_empty", Atom(""), b(119, 0)},
		{"atom_utf8_long", Atom(strings.Repeat("\u00e9", 200)), b(118, u16(400), strings.Repeat("\u00e9", 200))},
		{"gen_atom", gen.Atom("ok"), b(119, 2, "ok")},
		{"true", true, b(119, 4, "true")},
		{"false", false, b(119, 5, "false")},
		{"string", "hi", b(109, u32(2), "hi")},
		{"bytes", []byte{1}, b(109, u32(1), 1)},
		{"bytes_nil", []byte(nil), b(109, u32(0))},
		{"bits", BitBinary{Bytes: []byte{0xff}, Bits: 2}, b(77, u32(1), 2, 0xc0)},
		{"bits_8", BitBinary{Bytes: []byte{0xff}, Bits: 8}, b(109, u32(1), 0xff)},
		{"bits_empty", BitBinary{}, b(109, u32(0))},
		{"tuple_empty", Tuple{}, b(104, 0)},
		{"tuple_nil", Tuple(nil), b(104, 0)},
		{"tuple_large", Tuple(repeatList(256, true)), b(105, u32(256), bytes.Repeat(b(119, 4, "true"), 256))},
		{"nil", List(nil), b(106)},
		{"empty_slice", []any{}, b(106)},
		{"string_ext", List{104, int64(105)}, b(107, u16(2), "hi")},
		{"string_ext_65535", repeatList(65535, 1), b(107, u16(65535), bytes.Repeat([]byte{1}, 65535))},
		{"list_65536", repeatList(65536, 1), b(108, u32(65536), bytes.Repeat([]byte{97, 1}, 65536), 106)},
		{"list", List{Atom("a")}, b(108, u32(1), 119, 1, "a", 106)},
		{"list_with_256", List{1, 256}, b(108, u32(2), 97, 1, 98, u32(256), 106)},
		{"improper", ImproperList{Elems: []any{1}, Tail: Atom("t")}, b(108, u32(1), 97, 1, 119, 1, "t")},
		{"improper_nil_tail", ImproperList{Elems: []any{1}}, b(107, u16(1), 1)},
		{"improper_list_tail", ImproperList{Elems: []any{1}, Tail: List{2}}, b(107, u16(2), 1, 2)},
		{"improper_chain", ImproperList{Elems: []any{1}, Tail: ImproperList{Elems: []any{Atom("x")}, Tail: 3}},
			b(108, u32(2), 97, 1, 119, 1, "x", 97, 3)},
		{"improper_empty", ImproperList{Tail: 3}, b(97, 3)},
		{"map", Map{{Atom("b"), 1}, {Atom("a"), 2}}, b(116, u32(2), 119, 1, "b", 97, 1, 119, 1, "a", 97, 2)},
		{"map_empty", Map{}, b(116, u32(0))},
		{"pid", Pid{Node: "n@h", ID: 1, Serial: 2, Creation: 3}, b(88, node, u32(1), u32(2), u32(3))},
		{"gen_pid", gen.PID{Node: "n@h", ID: 2<<32 | 1, Creation: 3}, b(88, node, u32(1), u32(2), u32(3))},
		{"ref", Ref{Node: "n@h", Creation: 3, Len: 3, ID: [5]uint32{1, 2, 3}}, b(90, u16(3), node, u32(3), u32(1), u32(2), u32(3))},
		{"gen_ref", gen.Ref{Node: "n@h", Creation: 3, ID: [3]uint64{1, 2, 3}}, b(90, u16(3), node, u32(3), u32(1), u32(2), u32(3))},
		{"gen_ref_4", gen.Ref{Node: "n@h", Creation: 3, ID: [3]uint64{4<<32 | 1, 2, 3}}, b(90, u16(4), node, u32(3), u32(1), u32(2), u32(3), u32(4))},
		{"gen_alias", gen.Alias{Node: "n@h", Creation: 3, ID: [3]uint64{1, 2, 3}}, b(90, u16(3), node, u32(3), u32(1), u32(2), u32(3))},
		{"port", Port{Node: "n@h", ID: 1<<32 | 5, Creation: 3}, b(120, node, u32(1), u32(5), u32(3))},
		{"export", Export{Module: "m", Function: "f", Arity: 3}, b(113, 119, 1, "m", 119, 1, "f", 97, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendTerm(nil, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("AppendTerm(%s)\n got %v\nwant %v", show(tt.v), got, tt.want)
			}
			m, err := Marshal(tt.v)
			if err != nil || m[0] != 131 || !bytes.Equal(m[1:], tt.want) {
				t.Fatalf("Marshal: %v, %v", m, err)
			}
			v, err := Unmarshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if !Equal(v, tt.v) {
				t.Fatalf("decoded %s is not Equal to %s", show(v), show(tt.v))
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	cyclic := List{nil}
	cyclic[0] = cyclic
	tests := []struct {
		name string
		v    any
		want error
	}{
		{"nan", math.NaN(), ErrNonFinite},
		{"inf", math.Inf(1), ErrNonFinite},
		{"neg_inf_float32", float32(math.Inf(-1)), ErrNonFinite},
		{"nested_nan", Tuple{Atom("ok"), List{Map{{Atom("v"), math.NaN()}}}}, ErrNonFinite},
		{"atom_256", Atom(strings.Repeat("a", 256)), ErrAtomTooLong},
		{"atom_256_runes", Atom(strings.Repeat("\u00e9", 256)), ErrAtomTooLong},
		{"atom_too_many_bytes", Atom(strings.Repeat("a", 1021)), ErrAtomTooLong},
		{"atom_invalid_utf8", Atom("\xff"), ErrInvalidUTF8},
		{"pid_node_invalid", Pid{Node: "\xff"}, ErrInvalidUTF8},
		{"nil", nil, ErrUnsupportedType},
		{"struct", struct{}{}, ErrUnsupportedType},
		{"go_map", map[string]any{}, ErrUnsupportedType},
		{"pointer", new(int), ErrUnsupportedType},
		{"nil_big", (*big.Int)(nil), ErrInvalidValue},
		{"ref_len0", Ref{Node: "n"}, ErrInvalidValue},
		{"ref_len6", Ref{Node: "n", Len: 6}, ErrInvalidValue},
		{"bits_0", BitBinary{Bytes: []byte{1}}, ErrInvalidValue},
		{"bits_9", BitBinary{Bytes: []byte{1}, Bits: 9}, ErrInvalidValue},
		{"bits_empty_3", BitBinary{Bits: 3}, ErrInvalidValue},
		{"gen_pid_creation", gen.PID{Node: "n", Creation: -1}, ErrInvalidValue},
		{"gen_pid_creation_big", gen.PID{Node: "n", Creation: 1 << 32}, ErrInvalidValue},
		{"gen_ref_high", gen.Ref{Node: "n", ID: [3]uint64{1, 2, 1 << 32}}, ErrInvalidValue},
		{"too_deep", nestedLists(DefaultMaxDepth + 1), ErrTooDeep},
		{"cyclic", cyclic, ErrTooDeep},
		{"unsupported_in_list", List{1, struct{}{}}, ErrUnsupportedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := AppendTerm(dst, tt.v)
			if !errors.Is(err, tt.want) {
				t.Fatalf("AppendTerm(%s) = %v, want %v", show(tt.v), err, tt.want)
			}
			var ee *EncodeError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v is not an *EncodeError", err)
			}
			if string(out) != "prefix" {
				t.Fatalf("on error AppendTerm returned %q, want the original dst", out)
			}
			if m, err := Marshal(tt.v); m != nil || !errors.Is(err, tt.want) {
				t.Fatalf("Marshal = %v, %v", m, err)
			}
		})
	}
	var ee *EncodeError
	_, err := Marshal(Tuple{math.NaN()})
	if !errors.As(err, &ee) || ee.Type != "float64" {
		t.Fatalf("EncodeError should name the failing type: %#v", ee)
	}
}

func TestEncodeNoAllocs(t *testing.T) {
	var v any = Tuple{Atom("ok"), List{int64(1), 2.5, "bin", []byte("b")}, Pid{Node: "n@h", ID: 1}, int64(1) << 40}
	buf := make([]byte, 0, 256)
	var err error
	allocs := testing.AllocsPerRun(100, func() { buf, err = AppendTerm(buf[:0], v) })
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Fatalf("AppendTerm into a reused buffer: %v allocations, want 0", allocs)
	}
}

func TestGenMapping(t *testing.T) {
	p := Pid{Node: "n@h", ID: 0xfffffff0, Serial: 0xabcdef01, Creation: math.MaxUint32}
	if got, err := PidFromGen(p.Gen()); err != nil || got != p {
		t.Fatalf("pid round trip: %+v, %v", got, err)
	}
	for n := uint8(3); n <= 5; n++ {
		r := Ref{Node: "n@h", Creation: 7, Len: n}
		for i := range n {
			r.ID[i] = uint32(i+1) * 0x01010101
		}
		if got, err := RefFromGen(r.Gen()); err != nil || got != r {
			t.Fatalf("ref of %d words: %+v, %v", n, got, err)
		}
		if got, err := RefFromGen(gen.Ref(r.GenAlias())); err != nil || got != r {
			t.Fatalf("alias of %d words: %+v, %v", n, got, err)
		}
	}
	short := Ref{Node: "n@h", Len: 1, ID: [5]uint32{9}}
	if g := short.Gen(); g.ID != [3]uint64{9, 0, 0} {
		t.Fatalf("one-word ref: %+v", g)
	}
}

func TestEqual(t *testing.T) {
	eq := [][2]any{
		{int(5), big.NewInt(5)},
		{"abc", []byte("abc")},
		{List{1, 2}, []any{int64(1), uint8(2)}},
		{List(nil), List{}},
		{Map{{Atom("a"), 1}, {Atom("b"), 2}}, Map{{Atom("b"), 2}, {Atom("a"), 1}}},
		{Atom("x"), gen.Atom("x")},
		{BitBinary{Bytes: []byte{0xff}, Bits: 1}, BitBinary{Bytes: []byte{0x80}, Bits: 1}},
		{ImproperList{Elems: []any{1}, Tail: List{2}}, List{1, 2}},
		{true, Atom("true")},
	}
	for _, p := range eq {
		if !Equal(p[0], p[1]) {
			t.Errorf("Equal(%s, %s) = false", show(p[0]), show(p[1]))
		}
	}
	ne := [][2]any{
		{0.0, math.Copysign(0, -1)},
		{int64(1), 1.0},
		{Atom("a"), "a"},
		{List{1}, Tuple{1}},
		{struct{}{}, struct{}{}},
		{Map{{Atom("a"), 1}}, Map{{Atom("a"), 2}}},
	}
	for _, p := range ne {
		if Equal(p[0], p[1]) {
			t.Errorf("Equal(%s, %s) = true", show(p[0]), show(p[1]))
		}
	}
	m := Map{{List{1}, Atom("a")}, {Atom("k"), 2}}
	if v, ok := m.Get([]any{1}); !ok || v != Atom("a") {
		t.Errorf("Map.Get: %v, %v", v, ok)
	}
	if _, ok := m.Get(Atom("missing")); ok {
		t.Error("Map.Get found a missing key")
	}
}
