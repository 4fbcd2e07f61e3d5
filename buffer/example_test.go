package buffer_test

import (
	"fmt"

	"github.com/pharos-node/pharos-node/buffer"
)

// A ring of three records: the fourth Push evicts the oldest, and the failed remainder of a
// delivery goes back in front.
func Example() {
	r, err := buffer.New(3, 1<<20)
	if err != nil {
		panic(err)
	}
	var evicted [][]byte
	for _, rec := range []string{"m1", "m2", "m3", "m4"} {
		evicted = r.Push([]byte(rec), evicted[:0])
		for _, e := range evicted {
			fmt.Printf("evicted %s: spill or count it\n", e)
		}
	}
	batch := r.DrainN(nil, 2)
	fmt.Printf("sending %s\n", batch)
	sent := 1 // the connection dropped after the first record
	lost := r.PutBack(batch[sent:])
	fmt.Printf("put back %s, lost %d\n", batch[sent:], len(lost))
	fmt.Printf("left %s\n", r.Drain(nil))
	// Output:
	// evicted m1: spill or count it
	// sending [m2 m3]
	// put back [m3], lost 0
	// left [m3 m4]
}
