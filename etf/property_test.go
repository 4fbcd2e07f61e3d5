package etf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// Generators of terms in their decoded form, so that decode(encode(v)) must give v exactly.

func genAtom() *rapid.Generator[Atom] {
	return rapid.Custom(func(t *rapid.T) Atom {
		switch rapid.IntRange(0, 9).Draw(t, "atomKind") {
		case 0:
			return Atom(strings.Repeat(rapid.StringOfN(rapid.Rune(), 1, 1, -1).Draw(t, "r"), rapid.IntRange(200, 255).Draw(t, "n")))
		case 1, 2:
			return Atom(rapid.StringN(0, 20, -1).Draw(t, "unicode"))
		}
		return Atom(rapid.StringMatching(`[a-z][a-z0-9_@.]{0,15}`).Draw(t, "ascii"))
	})
}

func genBig() *rapid.Generator[*big.Int] {
	return rapid.Custom(func(t *rapid.T) *big.Int {
		mag := rapid.SliceOfN(rapid.Byte(), 8, 300).Draw(t, "mag")
		mag[0] |= 0x80 // at least 64 bits: outside int64 unless exactly -2^63
		z := new(big.Int).SetBytes(mag)
		if rapid.Bool().Draw(t, "neg") {
			z.Neg(z)
		}
		if z.IsInt64() {
			z.Lsh(z, 1)
		}
		return z
	})
}

func genFloat() *rapid.Generator[float64] {
	return rapid.Custom(func(t *rapid.T) float64 {
		f := rapid.Float64().Draw(t, "f")
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0.5
		}
		return f
	})
}

func genBitBinary() *rapid.Generator[BitBinary] {
	return rapid.Custom(func(t *rapid.T) BitBinary {
		data := rapid.SliceOfN(rapid.Byte(), 1, 20).Draw(t, "bytes")
		nbits := rapid.Uint8Range(1, 7).Draw(t, "bits")
		data[len(data)-1] &= byte(0xff << (8 - nbits))
		return BitBinary{Bytes: data, Bits: nbits}
	})
}

func genPid() *rapid.Generator[Pid] {
	return rapid.Custom(func(t *rapid.T) Pid {
		return Pid{Node: genAtom().Draw(t, "node"), ID: rapid.Uint32().Draw(t, "id"), Serial: rapid.Uint32().Draw(t, "serial"), Creation: rapid.Uint32().Draw(t, "creation")}
	})
}

func genRef() *rapid.Generator[Ref] {
	return rapid.Custom(func(t *rapid.T) Ref {
		r := Ref{Node: genAtom().Draw(t, "node"), Creation: rapid.Uint32().Draw(t, "creation"), Len: rapid.Uint8Range(1, 5).Draw(t, "len")}
		for i := range r.Len {
			r.ID[i] = rapid.Uint32().Draw(t, "word")
		}
		return r
	})
}

func genScalar() *rapid.Generator[any] {
	return rapid.OneOf(
		rapid.Map(rapid.Int64(), func(x int64) any { return x }),
		rapid.Map(rapid.Int64Range(0, 300), func(x int64) any { return x }),
		rapid.Map(genBig(), func(x *big.Int) any { return x }),
		rapid.Map(genFloat(), func(x float64) any { return x }),
		rapid.Map(genAtom(), func(x Atom) any { return x }),
		rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 40), func(x []byte) any { return x }),
		rapid.Map(genBitBinary(), func(x BitBinary) any { return x }),
		rapid.Map(genPid(), func(x Pid) any { return x }),
		rapid.Map(genRef(), func(x Ref) any { return x }),
		rapid.Custom(func(t *rapid.T) any {
			return Port{Node: genAtom().Draw(t, "node"), ID: rapid.Uint64().Draw(t, "id"), Creation: rapid.Uint32().Draw(t, "c")}
		}),
		rapid.Custom(func(t *rapid.T) any {
			return Export{Module: genAtom().Draw(t, "m"), Function: genAtom().Draw(t, "f"), Arity: rapid.Uint8().Draw(t, "a")}
		}),
		rapid.Just[any](List(nil)),
	)
}

// genTerm generates terms nested at most depth containers deep.
func genTerm(depth int) *rapid.Generator[any] {
	if depth == 0 {
		return genScalar()
	}
	inner := genTerm(depth - 1)
	return rapid.OneOf(
		genScalar(),
		rapid.Custom(func(t *rapid.T) any {
			return Tuple(rapid.SliceOfN(inner, 0, 5).Draw(t, "tuple"))
		}),
		rapid.Custom(func(t *rapid.T) any {
			return List(rapid.SliceOfN(inner, 1, 5).Draw(t, "list"))
		}),
		rapid.Custom(func(t *rapid.T) any { // a charlist: STRING_EXT
			return List(rapid.SliceOfN(rapid.Map(rapid.Int64Range(0, 255), func(x int64) any { return x }), 1, 10).Draw(t, "chars"))
		}),
		rapid.Custom(func(t *rapid.T) any {
			tail := inner.Draw(t, "tail")
			switch tail.(type) {
			case List, ImproperList:
				tail = Atom("tail")
			}
			return ImproperList{Elems: rapid.SliceOfN(inner, 1, 4).Draw(t, "elems"), Tail: tail}
		}),
		rapid.Custom(func(t *rapid.T) any {
			m := Map{}
			for range rapid.IntRange(0, 5).Draw(t, "size") {
				k := inner.Draw(t, "key")
				if _, dup := m.Get(k); !dup {
					m = append(m, MapEntry{k, inner.Draw(t, "value")})
				}
			}
			return m
		}),
		rapid.Custom(func(t *rapid.T) any {
			var uniq [16]byte
			copy(uniq[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "uniq"))
			f := Fun{Module: genAtom().Draw(t, "module"), Arity: rapid.Uint8().Draw(t, "arity"), Uniq: uniq,
				Index: rapid.Uint32().Draw(t, "index"), OldIndex: rapid.Int32().Draw(t, "oldindex"), OldUniq: rapid.Int32().Draw(t, "olduniq"),
				Pid: genPid().Draw(t, "pid"), Free: rapid.SliceOfN(inner, 0, 3).Draw(t, "free")}
			if rapid.IntRange(0, 4).Draw(t, "old") == 0 {
				f.Old, f.Arity, f.Uniq, f.Index = true, 0, [16]byte{}, 0
			}
			if len(f.Free) == 0 {
				f.Free = nil
			}
			return f
		}),
	)
}

func TestPropertyRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := genTerm(3).Draw(t, "term")
		data, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%s): %v", show(v), err)
		}
		got, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(%s)) = %v; bytes %x", show(v), err, data)
		}
		if !strictEqual(got, v) || !Equal(got, v) {
			t.Fatalf("round trip:\n want %s\n got  %s", show(v), show(got))
		}
		// Without the version byte, with bytes after the term.
		d := NewDecoder(Limits{})
		got, n, err := d.DecodeTerm(append(data[1:], 0xff), nil)
		if err != nil || n != len(data)-1 || !strictEqual(got, v) {
			t.Fatalf("DecodeTerm: %s, %d (want %d), %v", show(got), n, len(data)-1, err)
		}
		// Compressed, as term_to_binary(T, [compressed]) would write it.
		got, err = Unmarshal(compressed(data[1:]))
		if err != nil || !strictEqual(got, v) {
			t.Fatalf("compressed: %s, %v", show(got), err)
		}
		// Every prefix is truncation.
		for i := 1; i < len(data); i += 1 + len(data)/64 {
			if _, err := Unmarshal(data[:i]); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("prefix %d of %x: %v", i, data, err)
			}
		}
	})
}

func TestPropertyEqualIgnoresMapOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var m Map
		for i, k := range rapid.SliceOfNDistinct(genAtom(), 0, 8, func(a Atom) Atom { return a }).Draw(t, "keys") {
			m = append(m, MapEntry{k, int64(i)})
		}
		p := rapid.Permutation(m).Draw(t, "perm")
		if !Equal(m, p) {
			t.Fatalf("%s and its permutation %s are not Equal", show(m), show(p))
		}
		a, _ := Marshal(m)
		b, _ := Marshal(p)
		va, _ := Unmarshal(a)
		vb, _ := Unmarshal(b)
		if !Equal(va, vb) {
			t.Fatal("decoded permutations are not Equal")
		}
	})
}

func genString(maxRunes int) *rapid.Generator[string] {
	return rapid.StringN(0, maxRunes, -1)
}

func genTags() *rapid.Generator[[]Tag] {
	return rapid.Custom(func(t *rapid.T) []Tag {
		keys := rapid.SliceOfNDistinct(rapid.StringN(1, 10, -1), 0, 8, func(s string) string { return s }).Draw(t, "keys")
		var tags []Tag
		for _, k := range keys {
			tags = append(tags, Tag{Key: k, Value: genString(20).Draw(t, "value")})
		}
		return tags
	})
}

func genMetric() *rapid.Generator[Metric] {
	return rapid.Custom(func(t *rapid.T) Metric {
		return Metric{
			Name:        rapid.StringN(1, 30, -1).Draw(t, "name"),
			Kind:        rapid.SampledFrom([]MetricKind{Counter, Gauge, Histogram}).Draw(t, "kind"),
			Value:       genFloat().Draw(t, "value"),
			Tags:        genTags().Draw(t, "tags"),
			TimestampMs: rapid.Int64().Draw(t, "ts"),
			Source:      genString(20).Draw(t, "source"),
		}
	})
}

func genAlert() *rapid.Generator[Alert] {
	return rapid.Custom(func(t *rapid.T) Alert {
		return Alert{
			Name:        rapid.StringN(1, 30, -1).Draw(t, "name"),
			Severity:    rapid.SampledFrom([]Severity{Info, Warning, Critical}).Draw(t, "severity"),
			Message:     genString(60).Draw(t, "message"),
			Tags:        genTags().Draw(t, "tags"),
			TimestampMs: rapid.Int64().Draw(t, "ts"),
			Source:      genString(20).Draw(t, "source"),
		}
	})
}

func TestPropertyMetric(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMetric().Draw(t, "metric")
		if err := m.Validate(RecordLimits{}); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		data, err := AppendMetric(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		var got Metric
		if err := DecodeMetric(data, &got); err != nil || !metricsEqual(&got, &m) {
			t.Fatalf("DecodeMetric: %+v, %v", got, err)
		}
		v, err := Unmarshal(data)
		if err != nil || !strictEqual(v, metricTerm(&m)) {
			t.Fatalf("Unmarshal: %s, %v", show(v), err)
		}
		// The record encoder and the general encoder agree.
		if gen, err := Marshal(metricTerm(&m)); err != nil || !bytes.Equal(gen, data) {
			t.Fatalf("AppendMetric %x != Marshal %x (%v)", data, gen, err)
		}
		// The slow path (compressed input) decodes the same.
		if err := DecodeMetric(compressed(data[1:]), &got); err != nil || !metricsEqual(&got, &m) {
			t.Fatalf("DecodeMetric compressed: %+v, %v", got, err)
		}
	})
}

func TestPropertyAlert(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genAlert().Draw(t, "alert")
		if err := a.Validate(RecordLimits{}); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		data, err := AppendAlert(nil, &a)
		if err != nil {
			t.Fatal(err)
		}
		var got Alert
		if err := DecodeAlert(data, &got); err != nil || !alertsEqual(&got, &a) {
			t.Fatalf("DecodeAlert: %+v, %v", got, err)
		}
		if gen, err := Marshal(alertTerm(&a)); err != nil || !bytes.Equal(gen, data) {
			t.Fatalf("AppendAlert %x != Marshal %x (%v)", data, gen, err)
		}
		if err := DecodeAlert(compressed(data[1:]), &got); err != nil || !alertsEqual(&got, &a) {
			t.Fatalf("DecodeAlert compressed: %+v, %v", got, err)
		}
	})
}

func TestPropertyValidateRefusesInvalidUTF8(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMetric().Draw(t, "metric")
		bad := string([]byte{0xff, 0xfe})
		switch rapid.IntRange(0, 3).Draw(t, "field") {
		case 0:
			m.Name = bad
		case 1:
			m.Source = bad
		case 2:
			m.Tags = append(m.Tags, Tag{Key: bad, Value: "v"})
		case 3:
			m.Tags = append(m.Tags, Tag{Key: "k\x00unique", Value: bad})
		}
		if utf8.ValidString(bad) {
			t.Fatal("test string is valid")
		}
		if err := m.Validate(RecordLimits{}); !errors.Is(err, ErrInvalidUTF8) {
			t.Fatalf("Validate: %v", err)
		}
	})
}

// MetricSize and AlertSize bound what AppendMetric and AppendAlert append: a buffer with that
// much room is written in place.
func TestPropertyRecordSize(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMetric().Draw(t, "metric")
		a := genAlert().Draw(t, "alert")
		ms, as := MetricSize(&m), AlertSize(&a)
		mb, err := AppendMetric(make([]byte, 0, ms), &m)
		if err != nil || len(mb) > ms || cap(mb) != ms {
			t.Fatalf("metric: %d bytes, MetricSize %d, cap %d, %v", len(mb), ms, cap(mb), err)
		}
		ab, err := AppendAlert(make([]byte, 0, as), &a)
		if err != nil || len(ab) > as || cap(ab) != as {
			t.Fatalf("alert: %d bytes, AlertSize %d, cap %d, %v", len(ab), as, cap(ab), err)
		}
		// An invalid kind or severity gets the largest size (the encoder then refuses it).
		m.Kind, a.Severity = 0, 0
		if MetricSize(&m) < ms || AlertSize(&a) < as {
			t.Fatalf("sizes for an invalid kind or severity: %d, %d", MetricSize(&m), AlertSize(&a))
		}
	})
}

// ValidateAfter gives Validate's answer, error for error, for a metric drawn as a variation of a
// valid one: each field kept, replaced by another valid value, or broken (too long, bad UTF-8,
// empty, a duplicate tag key, a non-finite value, a bad kind).
func TestPropertyValidateAfterIsValidate(t *testing.T) {
	limits := RecordLimits{MaxNameBytes: 24, MaxTags: 6, MaxTagKeyBytes: 8, MaxTagValueBytes: 16, MaxSourceBytes: 16}
	rapid.Check(t, func(t *rapid.T) {
		// A prev valid under the limits by construction: at most 4 bytes a rune.
		keys := rapid.SliceOfNDistinct(rapid.StringN(1, 2, -1), 0, 6, func(s string) string { return s }).Draw(t, "keys")
		prev := Metric{
			Name:   rapid.StringN(1, 6, -1).Draw(t, "name"),
			Kind:   rapid.SampledFrom([]MetricKind{Counter, Gauge, Histogram}).Draw(t, "kind"),
			Value:  genFloat().Draw(t, "value"),
			Source: rapid.StringN(0, 4, -1).Draw(t, "source"),
		}
		for _, k := range keys {
			prev.Tags = append(prev.Tags, Tag{Key: k, Value: rapid.StringN(0, 4, -1).Draw(t, "tagValue")})
		}
		if err := prev.Validate(limits); err != nil {
			t.Fatalf("prev: %v", err)
		}
		m := prev
		m.Tags = slices.Clone(prev.Tags)
		vary := func(label, s string) string {
			switch rapid.IntRange(0, 24).Draw(t, label) {
			case 0:
				return strings.Clone(s) // equal, in other memory
			case 1:
				return genString(10).Draw(t, label+"New")
			case 2:
				return "\xff" + s
			case 3:
				return ""
			case 4:
				return strings.Repeat("x", 17+len(s))
			}
			return s
		}
		m.Name = vary("name", m.Name)
		m.Source = vary("source", m.Source)
		for i := range m.Tags {
			m.Tags[i].Key = vary("key", m.Tags[i].Key)
			m.Tags[i].Value = vary("value", m.Tags[i].Value)
			if rapid.IntRange(0, 5).Draw(t, "keyFromPrev") == 0 { // one of prev's keys, maybe another index's
				m.Tags[i].Key = prev.Tags[rapid.IntRange(0, len(prev.Tags)-1).Draw(t, "j")].Key
			}
		}
		switch rapid.IntRange(0, 4).Draw(t, "tagsShape") {
		case 0:
			m.Tags = append(m.Tags, Tag{Key: vary("extraKey", "k"), Value: vary("extraValue", "v")})
		case 1:
			if len(m.Tags) > 0 {
				m.Tags = append(m.Tags, m.Tags[0])
			}
		case 2:
			if len(m.Tags) > 0 {
				m.Tags = m.Tags[:len(m.Tags)-1]
			}
		case 3:
			if len(m.Tags) > 1 {
				m.Tags[0], m.Tags[1] = m.Tags[1], m.Tags[0]
			}
		case 4: // the same number of tags, two with the same key
			if len(m.Tags) > 1 {
				i := rapid.IntRange(1, len(m.Tags)-1).Draw(t, "dupAt")
				m.Tags[i].Key = m.Tags[rapid.IntRange(0, i-1).Draw(t, "dupOf")].Key
			}
		}
		switch rapid.IntRange(0, 5).Draw(t, "scalar") {
		case 0:
			m.Value = math.Inf(1)
		case 1:
			m.Kind = MetricKind(rapid.IntRange(-1, 5).Draw(t, "kind"))
		}
		want, got := m.Validate(limits), m.ValidateAfter(&prev, limits)
		sameError(t, got, want)
		if want == nil {
			sameError(t, m.ValidateAfter(&m, limits), nil) // a metric after itself
		}
	})
}

// sameError fails unless got and want are the same error: the same text, the same field and the
// same sentinel.
func sameError(t *rapid.T, got, want error) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("ValidateAfter = %v, Validate = %v", got, want)
	}
	var g, w *ValidationError
	if errors.As(got, &g) != errors.As(want, &w) || g != nil && (g.Record != w.Record || g.Field != w.Field) {
		t.Fatalf("ValidateAfter = %#v, Validate = %#v", got, want)
	}
	for _, sentinel := range []error{ErrEmptyName, ErrInvalidKind, ErrNonFinite, ErrTooManyTags, ErrEmptyTagKey,
		ErrFieldTooLong, ErrInvalidUTF8, ErrDuplicateTag} {
		if errors.Is(got, sentinel) != errors.Is(want, sentinel) {
			t.Fatalf("ValidateAfter = %v, Validate = %v: differ on %v", got, want, sentinel)
		}
	}
}
