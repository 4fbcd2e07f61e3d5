package etf

import (
	"bytes"
	"compress/zlib"
	"errors"
	"io"
	"runtime"
	"testing"
)

func nestedTuples(depth int) any {
	var v any = int64(1)
	for range depth {
		v = Tuple{v}
	}
	return v
}

func TestLimitMaxDepth(t *testing.T) {
	shapes := map[string]func(int) any{
		"tuple": nestedTuples,
		"list":  nestedLists,
		"map": func(d int) any {
			var v any = int64(1)
			for range d {
				v = Map{{Atom("k"), v}}
			}
			return v
		},
		"map_key": func(d int) any {
			var v any = int64(1)
			for range d {
				v = Map{{v, Atom("v")}}
			}
			return v
		},
		"improper_tail": func(d int) any {
			var v any = Atom("end")
			for range d {
				v = ImproperList{Elems: []any{int64(0)}, Tail: Tuple{v}}
			}
			return v
		},
		"fun_env": func(d int) any {
			var v any = int64(1)
			for range d {
				v = Fun{Module: "m", Pid: Pid{Node: "n"}, Free: []any{v}}
			}
			return v
		},
	}
	for name, build := range shapes {
		t.Run(name, func(t *testing.T) {
			data, err := Marshal(build(10))
			if err != nil {
				t.Fatal(err)
			}
			var depth int
			for depth = 1; ; depth++ {
				_, err := NewDecoder(Limits{MaxDepth: depth}).Unmarshal(data)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrTooDeep) || !errors.Is(err, ErrLimit) {
					t.Fatalf("MaxDepth %d: %v, want ErrTooDeep", depth, err)
				}
			}
			if depth < 10 || depth > 20 {
				t.Fatalf("decoded only from MaxDepth %d", depth)
			}
		})
	}
	// The default: what the encoder accepts, the decoder accepts.
	deepest, err := Marshal(nestedTuples(DefaultMaxDepth))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(deepest); err != nil {
		t.Fatalf("depth DefaultMaxDepth: %v", err)
	}
	tooDeep := append([]byte{131, 104, 1}, deepest[1:]...)
	if _, err := Unmarshal(tooDeep); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("depth DefaultMaxDepth+1: %v", err)
	}
	// Hostile nesting far beyond the limit fails fast, without deep recursion.
	hostile := append([]byte{131}, bytes.Repeat([]byte{104, 1}, 1<<20)...)
	if _, err := Unmarshal(append(hostile, 106)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("million-deep tuples: %v", err)
	}
}

func TestLimitMaxInputSize(t *testing.T) {
	data, _ := Marshal(make([]byte, 100))
	d := NewDecoder(Limits{MaxInputSize: 100})
	if _, err := d.Unmarshal(data); !errors.Is(err, ErrInputTooLarge) || !errors.Is(err, ErrLimit) {
		t.Fatalf("Unmarshal: %v", err)
	}
	if _, _, err := d.DecodeTerm(data[1:], nil); !errors.Is(err, ErrInputTooLarge) {
		t.Fatalf("DecodeTerm: %v", err)
	}
	if _, err := NewDecoder(Limits{MaxInputSize: len(data)}).Unmarshal(data); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if got := NewDecoder(Limits{}).Limits(); got != DefaultLimits() {
		t.Fatalf("zero Limits give %+v, want the defaults", got)
	}
}

func TestLimitMaxBigIntBytes(t *testing.T) {
	d := NewDecoder(Limits{MaxBigIntBytes: 16})
	ok := b(131, 110, 16, 0, bytes.Repeat([]byte{1}, 16))
	if _, err := d.Unmarshal(ok); err != nil {
		t.Fatalf("16 bytes: %v", err)
	}
	over := b(131, 110, 17, 0, bytes.Repeat([]byte{1}, 17))
	if _, err := d.Unmarshal(over); !errors.Is(err, ErrBigIntTooLarge) || !errors.Is(err, ErrLimit) {
		t.Fatalf("17 bytes: %v", err)
	}
	huge := b(131, 111, u32(0xffffffff), 0, 1)
	if _, err := Unmarshal(huge); !errors.Is(err, ErrBigIntTooLarge) {
		t.Fatalf("4 GiB claimed: %v", err)
	}
	if _, err := NewDecoder(Limits{MaxBigIntBytes: 1 << 40}).Unmarshal(huge); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("4 GiB claimed, limit raised: %v", err)
	}
}

func zlibBytes(data []byte) []byte {
	var z bytes.Buffer
	w, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	w.Write(data)
	w.Close()
	return z.Bytes()
}

func TestLimitMaxDecompressedSize(t *testing.T) {
	term := b(109, u32(100000), make([]byte, 100000))
	data := b(131, 80, u32(uint32(len(term))), zlibBytes(term))
	if _, err := Unmarshal(data); err != nil {
		t.Fatalf("default limits: %v", err)
	}
	d := NewDecoder(Limits{MaxDecompressedSize: 50000})
	if _, err := d.Unmarshal(data); !errors.Is(err, ErrDecompressedTooLarge) || !errors.Is(err, ErrLimit) {
		t.Fatalf("over the limit: %v", err)
	}
	// A size field beyond what the compressed bytes can inflate to is refused before allocating.
	bomb := b(131, 80, u32(60<<20), zlibBytes([]byte{106})[:8])
	big := NewDecoder(Limits{MaxDecompressedSize: 1 << 30})
	if n := allocatedBy(func() { _, err := big.Unmarshal(bomb); mustEOF(t, err) }); n > 1<<20 {
		t.Fatalf("a 60 MiB size field in %d bytes allocated %d bytes", len(bomb), n)
	}
	// A real bomb, 8 MiB of zeros in about 8 KiB, is refused by the limit before inflating.
	zeros := b(109, u32(8<<20), make([]byte, 8<<20))
	bomb = b(131, 80, u32(uint32(len(zeros))), zlibBytes(zeros))
	d = NewDecoder(Limits{MaxDecompressedSize: 1 << 20})
	if n := allocatedBy(func() {
		if _, err := d.Unmarshal(bomb); !errors.Is(err, ErrDecompressedTooLarge) {
			t.Fatalf("bomb: %v", err)
		}
	}); n > 64<<10 {
		t.Fatalf("refusing the bomb allocated %d bytes", n)
	}
	if _, err := Unmarshal(bomb); err != nil {
		t.Fatalf("the same term under the default limit: %v", err)
	}
}

func mustEOF(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
}

// allocatedBy returns the bytes f allocated.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLimitLengthFields: a length field larger than the bytes left is truncation, reported before any
// allocation, for every field that counts something.
func TestLimitLengthFields(t *testing.T) {
	node := b(119, 1, "n")
	max32 := u32(0xffffffff)
	hostile := map[string][]byte{
		"list":       b(131, 108, max32, 97, 1),
		"tuple":      b(131, 105, max32, 97, 1),
		"map":        b(131, 116, max32, 97, 1, 97, 2),
		"binary":     b(131, 109, max32, 1, 2, 3),
		"bit_binary": b(131, 77, max32, 3, 1, 2, 3),
		"string":     b(131, 107, u16(65535), 1, 2),
		"atom":       b(131, 118, u16(1000), "abc"),
		"big":        b(131, 110, 255, 0, 1),
		"ref":        b(131, 90, u16(5), node, u32(1), u32(1)),
		"fun_free":   b(131, 117, max32, 88, node, u32(1), u32(1), u32(1), node, 97, 1, 97, 1, 97, 1),
		"compressed": b(131, 80, u32(1<<20), 0x78),
		"in_list":    b(131, 108, u32(2), 97, 1, 108, max32, 106),
	}
	for name, data := range hostile {
		t.Run(name, func(t *testing.T) {
			var err error
			n := allocatedBy(func() { _, err = Unmarshal(data) })
			mustEOF(t, err)
			if n > 64<<10 {
				t.Fatalf("%d input bytes made the decoder allocate %d bytes", len(data), n)
			}
		})
	}
}

// TestAllocationProportional: decoding allocates a bounded multiple of the input, even for inputs made of
// the smallest elements.
func TestAllocationProportional(t *testing.T) {
	const n = 1 << 20
	inputs := map[string][]byte{
		"nils":         b(131, 108, u32(n), bytes.Repeat([]byte{106}, n), 106),
		"small_ints":   b(131, 108, u32(n/2), bytes.Repeat([]byte{97, 7}, n/2), 106),
		"string_ext":   b(131, 108, u32(16), bytes.Repeat(b(107, u16(65535), make([]byte, 65535)), 16), 106),
		"empty_tuples": b(131, 105, u32(n/2), bytes.Repeat([]byte{104, 0}, n/2)),
		"floats":       b(131, 108, u32(n/9), bytes.Repeat(b(70, u32(0x3ff00000), u32(0)), n/9), 106),
	}
	for name, data := range inputs {
		var err error
		got := allocatedBy(func() { _, err = Unmarshal(data) })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ratio := float64(got) / float64(len(data)); ratio > 40 {
			t.Errorf("%s: %d input bytes allocated %d bytes (%.1f per byte)", name, len(data), got, ratio)
		} else {
			t.Logf("%s: %.1f bytes allocated per input byte", name, ratio)
		}
	}
}
