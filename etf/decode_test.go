package etf

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/big"
	"sync"
	"testing"

	"ergo.services/ergo/gen"
)

// b builds byte slices from bytes and strings, for hand-written terms.
func b(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch x := p.(type) {
		case int:
			out = append(out, byte(x))
		case byte:
			out = append(out, x)
		case rune:
			out = append(out, byte(x))
		case string:
			out = append(out, x...)
		case []byte:
			out = append(out, x...)
		default:
			panic("b: bad part")
		}
	}
	return out
}

func u16(n int) []byte    { return binary.BigEndian.AppendUint16(nil, uint16(n)) }
func u32(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// compressed wraps a term (tag first, no version byte) as 131, 80, size, zlib.
func compressed(term []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(term)
	w.Close()
	return b(131, 80, u32(uint32(len(term))), z.Bytes())
}

func TestDecodeTags(t *testing.T) {
	node := b(100, u16(7), "foo@bar")
	tests := []struct {
		name string
		data []byte
		want any
	}{
		{"new_float", b(131, 70, u32(0x3ff80000), u32(0)), 1.5},
		{"float_ext", b(131, 99, "1.50000000000000000000e+00", 0, 0, 0, 0, 0), 1.5},
		{"float_ext_neg", b(131, 99, "-2.50000000000000000000e-01", 0, 0, 0, 0), -0.25},
		{"bit_binary", b(131, 77, u32(2), 3, 0xff, 0xff), BitBinary{Bytes: []byte{0xff, 0xe0}, Bits: 3}},
		{"bit_binary_8", b(131, 77, u32(1), 8, 7), []byte{7}},
		{"bit_binary_empty", b(131, 77, u32(0), 0), []byte{}},
		{"compressed", compressed(b(104, 2, 97, 1, 97, 2)), Tuple{int64(1), int64(2)}},
		{"new_pid", b(131, 88, node, u32(1), u32(2), u32(3)), Pid{Node: "foo@bar", ID: 1, Serial: 2, Creation: 3}},
		{"pid", b(131, 103, node, u32(1), u32(2), 3), Pid{Node: "foo@bar", ID: 1, Serial: 2, Creation: 3}},
		{"new_port", b(131, 89, node, u32(5), u32(6)), Port{Node: "foo@bar", ID: 5, Creation: 6}},
		{"port", b(131, 102, node, u32(5), 2), Port{Node: "foo@bar", ID: 5, Creation: 2}},
		{"v4_port", b(131, 120, node, u32(1), u32(2), u32(6)), Port{Node: "foo@bar", ID: 1<<32 | 2, Creation: 6}},
		{"newer_ref", b(131, 90, u16(2), node, u32(9), u32(1), u32(2)), Ref{Node: "foo@bar", Creation: 9, Len: 2, ID: [5]uint32{1, 2}}},
		{"new_ref", b(131, 114, u16(1), node, 1, u32(5)), Ref{Node: "foo@bar", Creation: 1, Len: 1, ID: [5]uint32{5}}},
		{"ref", b(131, 101, node, u32(5), 1), Ref{Node: "foo@bar", Creation: 1, Len: 1, ID: [5]uint32{5}}},
		{"small_int", b(131, 97, 200), int64(200)},
		{"int", b(131, 98, u32(0xfffffffe)), int64(-2)},
		{"atom", b(131, 100, u16(2), "ok"), Atom("ok")},
		{"atom_latin1", b(131, 100, u16(2), 0xe9, 0xff), Atom("\u00e9\u00ff")},
		{"small_atom", b(131, 115, 2, 0xe9, 'x'), Atom("\u00e9x")},
		{"atom_utf8", b(131, 118, u16(2), "\u00e9"), Atom("\u00e9")},
		{"small_atom_utf8", b(131, 119, 3, "\u20ac"), Atom("\u20ac")},
		{"small_tuple", b(131, 104, 0), Tuple{}},
		{"large_tuple", b(131, 105, u32(1), 106), Tuple{List(nil)}},
		{"nil", b(131, 106), List(nil)},
		{"string", b(131, 107, u16(2), 0, 255), List{int64(0), int64(255)}},
		{"string_empty", b(131, 107, u16(0)), List(nil)},
		{"list", b(131, 108, u32(1), 97, 1, 106), List{int64(1)}},
		{"list_improper", b(131, 108, u32(1), 97, 1, 97, 2), ImproperList{Elems: []any{int64(1)}, Tail: int64(2)}},
		{"list_tail_merged", b(131, 108, u32(1), 97, 1, 108, u32(1), 97, 2, 106), List{int64(1), int64(2)}},
		{"list_tail_string", b(131, 108, u32(1), 97, 1, 107, u16(1), 2), List{int64(1), int64(2)}},
		{"list_tail_improper", b(131, 108, u32(1), 97, 1, 108, u32(1), 97, 2, 97, 3), ImproperList{Elems: []any{int64(1), int64(2)}, Tail: int64(3)}},
		{"list_empty_is_tail", b(131, 108, u32(0), 97, 7), int64(7)},
		{"binary", b(131, 109, u32(2), "hi"), []byte("hi")},
		{"small_big", b(131, 110, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x80), bigDec("9223372036854775808")},
		{"small_big_min64", b(131, 110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 0x80), int64(math.MinInt64)},
		{"small_big_zero", b(131, 110, 0, 0), int64(0)},
		{"small_big_negzero", b(131, 110, 2, 1, 0, 0), int64(0)},
		{"small_big_padded", b(131, 110, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), int64(1)},
		{"large_big", b(131, 111, u32(9), 1, 0, 0, 0, 0, 0, 0, 0, 0, 1), bigPow2(64, true)},
		{"export", b(131, 113, 119, 5, "lists", 119, 3, "map", 97, 2), Export{Module: "lists", Function: "map", Arity: 2}},
		{"map", b(131, 116, u32(1), 119, 1, "a", 97, 1), Map{{Atom("a"), int64(1)}}},
		{"map_zero_keys", b(131, 116, u32(2), 70, u32(0), u32(0), 97, 1, 70, u32(0x80000000), u32(0), 97, 2),
			Map{{0.0, int64(1)}, {math.Copysign(0, -1), int64(2)}}},
		{"fun_old", b(131, 117, u32(1), 88, node, u32(1), u32(0), u32(1), 119, 1, "m", 97, 3, 98, u32(0xffffffff), 97, 9),
			Fun{Old: true, Module: "m", OldIndex: 3, OldUniq: -1, Pid: Pid{Node: "foo@bar", ID: 1, Creation: 1}, Free: []any{int64(9)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Unmarshal(tt.data)
			if err != nil {
				t.Fatalf("Unmarshal(%v): %v", tt.data, err)
			}
			if !strictEqual(v, tt.want) {
				t.Fatalf("Unmarshal(%v) = %s, want %s", tt.data, show(v), show(tt.want))
			}
			checkRoundTrip(t, tt.name, v)
			checkPrefixes(t, tt.name, tt.data, func(b []byte) error { _, err := Unmarshal(b); return err })
		})
	}
}

func TestDecodeNewFun(t *testing.T) {
	var uniq [16]byte
	for i := range uniq {
		uniq[i] = byte(i)
	}
	f := Fun{Module: "erl_eval", Arity: 1, Uniq: uniq, Index: 42, OldIndex: 42, OldUniq: 3316911, Pid: Pid{Node: local, ID: 9},
		Free: []any{Tuple{Atom("a")}, List(nil)}}
	data, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if size := binary.BigEndian.Uint32(data[2:]); int(size) != len(data)-2 {
		t.Fatalf("NEW_FUN_EXT Size = %d, want %d (from the Size field to the end)", size, len(data)-2)
	}
	v, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if !strictEqual(v, f) {
		t.Fatalf("got %s, want %s", show(v), show(f))
	}
	// BEAM ignores a wrong Size, and so does the decoder.
	binary.BigEndian.PutUint32(data[2:], 7)
	if v, err = Unmarshal(data); err != nil || !strictEqual(v, f) {
		t.Fatalf("with a wrong Size: %s, %v", show(v), err)
	}
}

func TestDecodeErrors(t *testing.T) {
	node := b(119, 1, "n")
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"version", b(130, 97, 1), ErrVersion},
		{"trailing", b(131, 97, 1, 0), ErrTrailingData},
		{"unknown_tag", b(131, 0), ErrUnknownTag},
		{"atom_cache_ref_tag_78", b(131, 78, 0), ErrUnknownTag},
		{"local_ext", b(131, 121, u32(0), 97, 1), ErrLocalExt},
		{"atom_cache_without_cache", b(131, 82, 0), ErrAtomCache},
		{"nested_compressed", b(131, 104, 1, 80, u32(1), 0), ErrUnknownTag},
		{"nan", b(131, 70, u32(0x7ff80000), u32(0)), ErrNonFinite},
		{"inf", b(131, 70, u32(0x7ff00000), u32(0)), ErrNonFinite},
		{"neg_inf", b(131, 70, u32(0xfff00000), u32(0)), ErrNonFinite},
		{"float_ext_inf", b(131, 99, "inf", make([]byte, 28)), ErrNonFinite},
		{"float_ext_nan", b(131, 99, "nan", make([]byte, 28)), ErrNonFinite},
		{"float_ext_overflow", b(131, 99, "1.0e999", make([]byte, 24)), ErrNonFinite},
		{"float_ext_garbage", b(131, 99, "one point five", make([]byte, 17)), ErrInvalid},
		{"atom_latin1_256", b(131, 100, u16(256), bytes.Repeat([]byte("a"), 256)), ErrInvalid},
		{"atom_utf8_invalid", b(131, 119, 2, 0xc3, 0x28), ErrInvalid},
		{"atom_utf8_256_runes", b(131, 118, u16(512), bytes.Repeat([]byte("\u00e9"), 256)), ErrInvalid},
		{"atom_utf8_too_long", b(131, 118, u16(1021), bytes.Repeat([]byte("a"), 1021)), ErrInvalid},
		{"bit_binary_bits_0", b(131, 77, u32(1), 0, 1), ErrInvalid},
		{"bit_binary_bits_9", b(131, 77, u32(1), 9, 1), ErrInvalid},
		{"bit_binary_empty_bits", b(131, 77, u32(0), 3), ErrInvalid},
		{"big_sign", b(131, 110, 1, 2, 1), ErrInvalid},
		{"pid_creation", b(131, 103, node, u32(1), u32(1), 4), ErrInvalid},
		{"port_creation", b(131, 102, node, u32(1), 4), ErrInvalid},
		{"ref_creation", b(131, 101, node, u32(1), 4), ErrInvalid},
		{"ref_first_word", b(131, 101, node, u32(1<<18), 0), ErrInvalid},
		{"new_ref_first_word", b(131, 114, u16(1), node, 0, u32(1<<18)), ErrInvalid},
		{"ref_no_words", b(131, 90, u16(0), node, u32(1)), ErrInvalid},
		{"ref_six_words", b(131, 90, u16(6), node, u32(1), make([]byte, 24)), ErrInvalid},
		{"pid_node_not_atom", b(131, 88, 97, 1, u32(1), u32(1), u32(1)), ErrUnknownTag},
		{"export_arity_big", b(131, 113, node, node, 98, u32(256)), ErrInvalid},
		{"export_arity_not_int", b(131, 113, node, node, 106), ErrUnknownTag},
		{"dup_key", b(131, 116, u32(2), 119, 1, "a", 97, 1, 119, 1, "a", 97, 2), ErrDuplicateKey},
		{"dup_key_atom_encodings", b(131, 116, u32(2), 100, u16(1), "a", 97, 1, 119, 1, "a", 97, 2), ErrDuplicateKey},
		{"dup_key_string_list", b(131, 116, u32(2), 107, u16(1), 1, 97, 1, 108, u32(1), 97, 1, 106, 97, 2), ErrDuplicateKey},
		{"dup_key_int_encodings", b(131, 116, u32(2), 97, 5, 106, 110, 1, 0, 5, 106), ErrDuplicateKey},
		{"dup_key_float_encodings", b(131, 116, u32(2), 70, u32(0x3ff80000), u32(0), 106, 99, "1.5", make([]byte, 28), 106), ErrDuplicateKey},
		{"dup_key_nested_maps", b(131, 116, u32(2),
			116, u32(2), 119, 1, "x", 97, 1, 119, 1, "y", 97, 2, 106,
			116, u32(2), 119, 1, "y", 97, 2, 119, 1, "x", 97, 1, 106), ErrDuplicateKey},
		{"dup_key_improper_tail", b(131, 116, u32(2),
			108, u32(2), 97, 1, 97, 2, 119, 1, "t", 106,
			108, u32(1), 97, 1, 108, u32(1), 97, 2, 119, 1, "t", 106), ErrDuplicateKey},
		{"compressed_size_zero", b(131, 80, u32(0), 0x78, 0x9c), ErrCompressed},
		{"compressed_corrupt", b(131, 80, u32(1), 0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), ErrCompressed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Unmarshal(%v) = %v, want %v", tt.data, err, tt.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
		})
	}
}

func TestDecodeDuplicateKeysLargeMap(t *testing.T) {
	m := Map{}
	for i := range 40 {
		m = append(m, MapEntry{Tuple{Atom("k"), int64(i)}, int64(i)})
	}
	data, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(data); err != nil {
		t.Fatalf("distinct keys: %v", err)
	}
	m = append(m, MapEntry{Tuple{Atom("k"), big.NewInt(17)}, int64(0)})
	if data, err = Marshal(m); err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(data); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate in 41 keys: %v", err)
	}
}

func TestDecodeErrorPosition(t *testing.T) {
	data := b(131, 104, 2, 97, 1, 108, u32(1), 70, u32(0x7ff00000), u32(0), 106)
	_, err := Unmarshal(data)
	var de *DecodeError
	if !errors.As(err, &de) || de.Offset != 10 || de.Tag != 70 || de.InCompressed || !errors.Is(err, ErrNonFinite) {
		t.Fatalf("got %#v (%v), want offset 10, tag 70, ErrNonFinite", de, err)
	}
	_, err = Unmarshal(compressed(b(104, 1, 0)))
	if !errors.As(err, &de) || de.Offset != 2 || !de.InCompressed || !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("inside a compressed term: got %#v (%v)", de, err)
	}
	if _, err := Unmarshal(nil); err != io.EOF {
		t.Fatalf("empty input: %v, want io.EOF", err)
	}
}

func TestDecodeCompressedErrors(t *testing.T) {
	term := b(109, u32(300), bytes.Repeat([]byte{1}, 300))
	good := compressed(term)
	if v, err := Unmarshal(good); err != nil || !strictEqual(v, bytes.Repeat([]byte{1}, 300)) {
		t.Fatalf("good: %v", err)
	}
	short := bytes.Clone(good)
	binary.BigEndian.PutUint32(short[2:], 299) // inflates to more than the size says
	if _, err := Unmarshal(short); !errors.Is(err, ErrCompressed) {
		t.Fatalf("size too small: %v", err)
	}
	long := bytes.Clone(good)
	binary.BigEndian.PutUint32(long[2:], 301) // inflates to less
	if _, err := Unmarshal(long); !errors.Is(err, ErrCompressed) {
		t.Fatalf("size too large: %v", err)
	}
	cut := compressed(term[:200]) // the inflated bytes hold a cut term: corruption, not truncation
	if _, err := Unmarshal(cut); !errors.Is(err, ErrCompressed) {
		t.Fatalf("cut term inside: %v", err)
	}
	badSum := bytes.Clone(good)
	badSum[len(badSum)-1] ^= 0xff
	if _, err := Unmarshal(badSum); !errors.Is(err, ErrCompressed) {
		t.Fatalf("bad checksum: %v", err)
	}
	twice := compressed(good[1:])
	if _, err := Unmarshal(twice); !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("compressed inside compressed: %v", err)
	}
}

func TestDecodeTerm(t *testing.T) {
	d := NewDecoder(Limits{})
	// A control message and a payload back to back, with atom cache references, as after a dist header.
	frame := b(104, 2, 97, 6, 82, 0, 104, 2, 82, 1, 109, u32(1), "x", 0xee)
	atoms := AtomCache{"nonode@nohost", "hello"}
	v, n, err := d.DecodeTerm(frame, atoms)
	if err != nil || n != 6 || !strictEqual(v, Tuple{int64(6), Atom("nonode@nohost")}) {
		t.Fatalf("first term: %s, %d, %v", show(v), n, err)
	}
	v, m, err := d.DecodeTerm(frame[n:], atoms)
	if err != nil || m != 10 || !strictEqual(v, Tuple{Atom("hello"), []byte("x")}) {
		t.Fatalf("second term: %s, %d, %v", show(v), m, err)
	}
	if _, _, err := d.DecodeTerm(frame[n:], AtomCache{"only"}); !errors.Is(err, ErrAtomCache) {
		t.Fatalf("index past the cache: %v", err)
	}
	if _, _, err := d.DecodeTerm(frame[n:], nil); !errors.Is(err, ErrAtomCache) {
		t.Fatalf("no cache: %v", err)
	}
	if _, _, err := d.DecodeTerm(nil, nil); err != io.EOF {
		t.Fatalf("empty: %v", err)
	}
	// A compressed term followed by another term: n stops at the end of the zlib stream.
	c := compressed(b(109, u32(100), bytes.Repeat([]byte("z"), 100)))[1:]
	two := b(c, 97, 5)
	v, n, err = d.DecodeTerm(two, nil)
	if err != nil || n != len(c) || !strictEqual(v, bytes.Repeat([]byte("z"), 100)) {
		t.Fatalf("compressed: %s, %d (want %d), %v", show(v), n, len(c), err)
	}
	if v, _, err = d.DecodeTerm(two[n:], nil); err != nil || v != int64(5) {
		t.Fatalf("after compressed: %v, %v", v, err)
	}
	checkPrefixes(t, "DecodeTerm", frame[:6], func(b []byte) error { _, _, err := d.DecodeTerm(b, atoms); return err })
	checkPrefixes(t, "DecodeTerm compressed", c, func(b []byte) error { _, _, err := d.DecodeTerm(b, nil); return err })
}

func TestDecodeErgoTypes(t *testing.T) {
	d := NewDecoder(Limits{}, WithErgoTypes())
	term := Tuple{Atom("a"), Pid{Node: "n@h", ID: 1, Serial: 2, Creation: 3}, Ref{Node: "n@h", Creation: 3, Len: 3, ID: [5]uint32{7, 8, 9}},
		Port{Node: "n@h", ID: 4}, List{Atom("b")}}
	data, err := Marshal(term)
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Tuple{gen.Atom("a"), gen.PID{Node: "n@h", ID: 2<<32 | 1, Creation: 3}, gen.Ref{Node: "n@h", Creation: 3, ID: [3]uint64{7, 8, 9}},
		Port{Node: "n@h", ID: 4}, List{gen.Atom("b")}}
	if !strictEqual(v, want) {
		t.Fatalf("got %s, want %s", show(v), show(want))
	}
	if !Equal(v, term) {
		t.Fatal("Ergo-typed and etf-typed decodings are not Equal")
	}
}

func TestDecoderConcurrent(t *testing.T) {
	d := NewDecoder(Limits{MaxDepth: 64})
	var inputs [][]byte
	for _, c := range termCases {
		if c.want != nil {
			data, err := Marshal(c.want)
			if err == nil && len(data) < 4096 {
				inputs = append(inputs, data)
			}
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				data := inputs[(i+g)%len(inputs)]
				if _, err := d.Unmarshal(data); err != nil && !errors.Is(err, ErrTooDeep) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDecodeLongEmptyListChain(t *testing.T) {
	// LIST_EXT with no elements is its tail; a long run of them must not recurse.
	data := []byte{131}
	for range 200000 {
		data = append(data, 108, 0, 0, 0, 0)
	}
	data = append(data, 97, 1)
	v, err := Unmarshal(data)
	if err != nil || v != int64(1) {
		t.Fatalf("got %v, %v", v, err)
	}
}
