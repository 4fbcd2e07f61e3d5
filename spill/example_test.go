package spill_test

import (
	"fmt"
	"os"

	"github.com/pharos-node/pharos-node/spill"
)

// Append, replay oldest first, trim what was delivered, and pick up after a restart.
func Example() {
	dir, err := os.MkdirTemp("", "spill-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	l, err := spill.Open(dir, spill.WithSync(spill.SyncAlways), spill.WithSourceID("edge-7"))
	if err != nil {
		panic(err)
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		seq, err := l.Append([]byte(m))
		if err != nil {
			panic(err)
		}
		fmt.Printf("stored %s as %d\n", m, seq)
	}
	batch, _ := l.Read(nil, 2)
	for _, r := range batch {
		fmt.Printf("delivered %d %s\n", r.Seq, r.Data)
	}
	l.Trim(batch[len(batch)-1].Seq) // delivered: no longer needed
	l.Close()

	l, err = spill.Open(dir) // a restart
	if err != nil {
		panic(err)
	}
	defer l.Close()
	fmt.Printf("source %s, %d record(s) to replay, %d lost\n", l.SourceID(), l.Len(), l.Recovery().LostRecords)
	rest, _ := l.Read(nil, 10)
	fmt.Printf("replayed %d %s\n", rest[0].Seq, rest[0].Data)
	seq, _ := l.Append([]byte("m4"))
	fmt.Printf("stored m4 as %d\n", seq)
	// Output:
	// stored m1 as 0
	// stored m2 as 1
	// stored m3 as 2
	// delivered 0 m1
	// delivered 1 m2
	// source edge-7, 1 record(s) to replay, 0 lost
	// replayed 2 m3
	// stored m4 as 3
}

// Verify and Repair a directory whose last record was torn by a crash.
func ExampleRepair() {
	dir, err := os.MkdirTemp("", "spill-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	l, _ := spill.Open(dir, spill.WithSync(spill.SyncNever))
	for i := range 5 {
		l.Append(fmt.Appendf(nil, "record %d", i))
	}
	l.Close()
	seg := dir + "/0000000000000001.seg"
	st, _ := os.Stat(seg)
	os.Truncate(seg, st.Size()-4) // a torn write: the last record lacks its last 4 bytes

	rep, err := spill.Verify(dir)
	fmt.Printf("intact: %v, %d records, %d lost, %d torn bytes: %v\n", rep.Intact(), rep.Records, rep.LostRecords, rep.TornBytes, err)
	res, _ := spill.Repair(dir)
	fmt.Printf("truncated %v, kept %v\n", res.Truncated, res.Broken)
	rep, err = spill.Verify(dir)
	fmt.Printf("intact: %v, %d records: %v\n", rep.Intact(), rep.Records, err)
	// Output:
	// intact: false, 4 records, 1 lost, 44 torn bytes: spill: corruption in segment 0000000000000001.seg at offset 288: unexpected EOF
	// truncated [0000000000000001.seg], kept [0000000000000001.seg.broken]
	// intact: true, 4 records: <nil>
}
