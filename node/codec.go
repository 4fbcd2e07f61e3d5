package node

// Message bodies go through package etf: incoming messages decode to etf values with Ergo's
// gen.Atom, gen.PID and gen.Ref in place of etf's atom, pid and reference types (so an actor can
// answer a pid it received with an ordinary Ergo send); outgoing values encode with
// etf.AppendTerm, which accepts those Ergo types too.

import (
	"fmt"

	"github.com/pharos-node/pharos-node/etf"
)

func newMessageDecoder(maxFrame int) func([]byte) (any, error) {
	d := etf.NewDecoder(etf.Limits{MaxInputSize: maxFrame}, etf.WithErgoTypes())
	return d.Unmarshal
}

func encodeMessage(dst []byte, v any) ([]byte, error) {
	return etf.AppendTerm(dst, v)
}

// decodeBareTerm decodes a term without version byte (an exit reason inside a control tuple).
func decodeBareTerm(raw []byte) (any, error) {
	d := etf.NewDecoder(etf.Limits{}, etf.WithErgoTypes())
	v, _, err := d.DecodeTerm(raw, nil)
	return v, err
}

func formatTerm(v any) string {
	switch t := v.(type) {
	case []byte:
		return string(t)
	case error:
		return t.Error()
	}
	return fmt.Sprintf("%v", v)
}
