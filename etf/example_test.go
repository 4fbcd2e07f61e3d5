package etf_test

import (
	"errors"
	"fmt"
	"math"

	"github.com/pharos-node/pharos-node/etf"
)

func ExampleMarshal() {
	b, err := etf.Marshal(etf.Tuple{etf.Atom("ok"), int64(42), "bin", etf.List{1, 2}})
	if err != nil {
		panic(err)
	}
	fmt.Println(b)
	// Output:
	// [131 104 4 119 2 111 107 97 42 109 0 0 0 3 98 105 110 107 0 2 1 2]
}

func ExampleUnmarshal() {
	// term_to_binary({ok, [1, 2 | c], 1.5}) on OTP 25.
	b := []byte{131, 104, 3, 100, 0, 2, 111, 107, 108, 0, 0, 0, 2, 97, 1, 97, 2, 100, 0, 1, 99,
		70, 63, 248, 0, 0, 0, 0, 0, 0}
	v, err := etf.Unmarshal(b)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%#v\n", v)
	// Output:
	// etf.Tuple{"ok", etf.ImproperList{Elems:[]interface {}{1, 2}, Tail:"c"}, 1.5}
}

func ExampleAppendMetric() {
	m := etf.Metric{
		Name: "cpu.load", Kind: etf.Gauge, Value: 0.75,
		Tags:        []etf.Tag{{Key: "host", Value: "web-1"}},
		TimestampMs: 1700000000123, Source: "pharos",
	}
	if err := m.Validate(etf.RecordLimits{}); err != nil {
		panic(err)
	}
	buf := make([]byte, 0, 256) // reused for every record: no allocation
	buf, err := etf.AppendMetric(buf[:0], &m)
	if err != nil {
		panic(err)
	}
	v, _ := etf.Unmarshal(buf)
	fmt.Printf("%d bytes, %v %s %v\n", len(buf), v.(etf.Tuple)[0], v.(etf.Tuple)[1], v.(etf.Tuple)[2])

	m.Value = math.NaN()
	_, err = etf.AppendMetric(buf[:0], &m)
	fmt.Println(errors.Is(err, etf.ErrNonFinite), err)
	// Output:
	// 87 bytes, metric cpu.load gauge
	// true etf: metric.value: etf: float is NaN or infinite
}

func ExampleDecodeMetric() {
	// term_to_binary({metric, <<"up">>, counter, 1.0, [], 17, <<"s">>}) on OTP 25.
	b := []byte{131, 104, 7, 100, 0, 6, 109, 101, 116, 114, 105, 99, 109, 0, 0, 0, 2, 117, 112, 100, 0, 7, 99,
		111, 117, 110, 116, 101, 114, 70, 63, 240, 0, 0, 0, 0, 0, 0, 106, 97, 17, 109, 0, 0, 0, 1, 115}
	var m etf.Metric
	if err := etf.DecodeMetric(b, &m); err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", m)
	// Output:
	// {Name:up Kind:counter Value:1 Tags:[] TimestampMs:17 Source:s}
}

func ExampleDecoder_DecodeTerm() {
	// A control message and its payload back to back, as they follow a distribution header whose
	// atom cache references are 0: 'pharos@host' and 1: 'hello'.
	frame := []byte{104, 2, 97, 6, 82, 0, 104, 2, 82, 1, 109, 0, 0, 0, 1, 120}
	atoms := etf.AtomCache{"pharos@host", "hello"}
	d := etf.NewDecoder(etf.Limits{MaxInputSize: 1 << 20, MaxDepth: 64})
	ctrl, n, err := d.DecodeTerm(frame, atoms)
	if err != nil {
		panic(err)
	}
	msg, m, err := d.DecodeTerm(frame[n:], atoms)
	if err != nil {
		panic(err)
	}
	fmt.Println(ctrl, n, msg, m)
	// Output:
	// [6 pharos@host] 6 [hello [120]] 10
}

func ExampleDecoder_limits() {
	deep := []byte{131, 104, 1, 104, 1, 104, 1, 106} // {{{[]}}}
	_, err := etf.NewDecoder(etf.Limits{MaxDepth: 2}).Unmarshal(deep)
	var de *etf.DecodeError
	fmt.Println(errors.Is(err, etf.ErrLimit), errors.As(err, &de), de.Offset)

	_, err = etf.Unmarshal(deep[:5])
	fmt.Println(err)
	// Output:
	// true true 5
	// etf: decode at offset 3 (tag 104): unexpected EOF
}

func ExampleEqual() {
	a := etf.Map{{Key: etf.Atom("a"), Value: 1}, {Key: "k", Value: etf.List{1, 2}}}
	b := etf.Map{{Key: []byte("k"), Value: []any{int64(1), int64(2)}}, {Key: etf.Atom("a"), Value: int64(1)}}
	fmt.Println(etf.Equal(a, b))
	// Output:
	// true
}
