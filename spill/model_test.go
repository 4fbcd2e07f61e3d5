package spill

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// logModel is the simple model of a Log: the untrimmed records in order, a read cursor (an index
// into them), the trim point and the numbers handed out.
type logModel struct {
	pending       []Record
	cursor        int
	untrimmedFrom uint64 // every record numbered below it is trimmed
	next          uint64 // the number the next Append gives: numbers are dense
}

func (m *logModel) bytes() int64 {
	var n int64
	for _, r := range m.pending {
		n += int64(len(r.Data))
	}
	return n
}

// trim removes the records with seq <= upTo.
func (m *logModel) trim(upTo uint64) {
	m.untrimmedFrom = max(m.untrimmedFrom, upTo+1)
	k := 0
	for k < len(m.pending) && m.pending[k].Seq < m.untrimmedFrom {
		k++
	}
	m.drop(k)
}

// drop removes the k oldest records; the cursor keeps its place among the rest.
func (m *logModel) drop(k int) {
	m.pending = m.pending[k:]
	m.cursor = max(m.cursor-k, 0)
}

// TestLogModel drives a Log with random appends, reads, rewinds, trims, syncs, clean restarts
// and (under SyncAlways) crashes, and checks it against logModel after every step: the records
// read, Len, Bytes, the dense numbering, the size cap, and the overflow
// policy (a drop must take the oldest records and count them). A twin Log, driven alike, keeps
// no tail and trims by scanning only: the two must read the same records and agree on every
// counter and on every segment's trimmed prefix, whatever the tail size drawn for the first.
func TestLogModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dir, twinDir := tempDir(t), tempDir(t)
		policy := rapid.SampledFrom([]SyncPolicy{SyncAlways, SyncInterval, SyncNever}).Draw(t, "sync")
		overflow := rapid.SampledFrom([]OverflowPolicy{DropOldest, Refuse}).Draw(t, "overflow")
		segments := rapid.IntRange(2, 8).Draw(t, "segments")
		opts := []Option{
			WithSync(policy), WithOverflow(overflow), WithSegmentSize(4096),
			WithMaxBytes(int64(segments) * 4096),
			WithFlushBytes(rapid.IntRange(1, 8192).Draw(t, "flush")),
		}
		if policy == SyncAlways {
			// Every trim point reaches the meta file at once, so that a crash loses none
			// and the model stays exact. (SyncAlways runs no ticker on this interval.)
			opts = append(opts, WithSyncInterval(time.Nanosecond))
		}
		tailBytes := rapid.SampledFrom([]int64{0, 200, 1000, 5000, DefaultTailBytes}).Draw(t, "tail")
		l := mustOpen(t, dir, append(opts, WithTailBytes(tailBytes))...)
		defer func() { l.Close() }()
		twin := scanOnly(mustOpen(t, twinDir, append(opts, WithTailBytes(0))...))
		defer func() { twin.Close() }()
		reopen := func(t *rapid.T) {
			l = mustOpen(t, dir, append(opts, WithTailBytes(tailBytes))...)
			checkRecovered(t, l)
			twin = scanOnly(mustOpen(t, twinDir, append(opts, WithTailBytes(0))...))
			checkRecovered(t, twin)
		}
		m := &logModel{}
		var prevDropped, prevDroppedBytes uint64
		next := 0

		store := func(t *rapid.T, seq uint64, err error, rec []byte) {
			st := l.Stats()
			if errors.Is(err, ErrFull) {
				if overflow != Refuse {
					t.Fatalf("ErrFull under %v", overflow)
				}
				return
			}
			if err != nil {
				t.Fatalf("append: %v", err)
			}
			if seq != m.next {
				t.Fatalf("seq %d, want %d (dense)", seq, m.next)
			}
			// A drop takes whole segments: the oldest untrimmed records, counted.
			if d := st.Dropped - prevDropped; d > 0 {
				if overflow != DropOldest || int(d) > len(m.pending) {
					t.Fatalf("dropped %d records under %v with %d pending", d, overflow, len(m.pending))
				}
				var b uint64
				for _, r := range m.pending[:d] {
					b += uint64(len(r.Data))
				}
				if b != st.DroppedBytes-prevDroppedBytes {
					t.Fatalf("dropped %d bytes, the %d oldest records hold %d", st.DroppedBytes-prevDroppedBytes, d, b)
				}
				m.drop(int(d))
			}
			prevDropped, prevDroppedBytes = st.Dropped, st.DroppedBytes
			m.next = seq + 1
			m.pending = append(m.pending, Record{Seq: seq, Data: rec})
		}
		newRec := func(t *rapid.T) []byte {
			rec := drawRecord(t, next, 21)
			next++
			return rec
		}

		t.Repeat(map[string]func(*rapid.T){
			"": func(t *rapid.T) {
				st := l.Stats()
				if st.Records != len(m.pending) || st.Bytes != m.bytes() {
					t.Fatalf("Len/Bytes = %d/%d, model %d/%d", st.Records, st.Bytes, len(m.pending), m.bytes())
				}
				if st.DiskBytes > int64(segments)*4096 {
					t.Fatalf("disk bytes %d over the cap %d", st.DiskBytes, segments*4096)
				}
				if st.NextSeq != m.next || l.NextSeq() != m.next {
					t.Fatalf("NextSeq %d (Stats %d), want %d", l.NextSeq(), st.NextSeq, m.next)
				}
				if st.UntrimmedFrom != m.untrimmedFrom {
					t.Fatalf("UntrimmedFrom %d, want %d", st.UntrimmedFrom, m.untrimmedFrom)
				}
				checkTwin(t, l, twin, policy != SyncInterval)
			},
			"append": func(t *rapid.T) {
				rec := newRec(t)
				seq, err := l.Append(rec)
				if tseq, terr := twin.Append(rec); tseq != seq || (terr == nil) != (err == nil) {
					t.Fatalf("Append: %d, %v; twin %d, %v", seq, err, tseq, terr)
				}
				store(t, seq, err, rec)
			},
			"read": func(t *rapid.T) {
				n := rapid.IntRange(1, 40).Draw(t, "n")
				got, err := l.Read(nil, n)
				if err != nil {
					t.Fatal(err)
				}
				tgot, err := twin.Read(nil, n)
				if err != nil {
					t.Fatal(err)
				}
				if len(tgot) != len(got) {
					t.Fatalf("Read(%d) gave %d records, the twin %d", n, len(got), len(tgot))
				}
				want := m.pending[m.cursor:min(m.cursor+n, len(m.pending))]
				if len(got) != len(want) {
					t.Fatalf("Read(%d) gave %d records, model %d (cursor %d of %d)", n, len(got), len(want), m.cursor, len(m.pending))
				}
				for i := range got {
					if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Data, want[i].Data) {
						t.Fatalf("Read record %d: seq %d %q, model seq %d %q", i, got[i].Seq, got[i].Data, want[i].Seq, want[i].Data)
					}
					if tgot[i].Seq != want[i].Seq || !bytes.Equal(tgot[i].Data, want[i].Data) {
						t.Fatalf("twin Read record %d: seq %d %q, model seq %d %q", i, tgot[i].Seq, tgot[i].Data, want[i].Seq, want[i].Data)
					}
				}
				m.cursor += len(got)
			},
			"rewind": func(t *rapid.T) {
				l.Rewind()
				twin.Rewind()
				m.cursor = 0
			},
			"trim": func(t *rapid.T) {
				var upTo uint64
				if len(m.pending) > 0 && rapid.Bool().Draw(t, "existing") {
					upTo = m.pending[rapid.IntRange(0, len(m.pending)-1).Draw(t, "k")].Seq
				} else {
					upTo = uint64(rapid.IntRange(0, int(m.next)+3).Draw(t, "upTo"))
				}
				if err := l.Trim(upTo); err != nil {
					t.Fatal(err)
				}
				if err := twin.Trim(upTo); err != nil {
					t.Fatal(err)
				}
				// Trim never reaches numbers not handed out yet.
				if next := l.NextSeq(); next > 0 {
					m.trim(min(upTo, next-1))
				}
			},
			"sync": func(t *rapid.T) {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				if err := twin.Sync(); err != nil {
					t.Fatal(err)
				}
			},
			"restart": func(t *rapid.T) {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if err := twin.Close(); err != nil {
					t.Fatal(err)
				}
				reopen(t)
				m.cursor = 0
				prevDropped, prevDroppedBytes = 0, 0 // a new Log counts from zero
			},
			"crash": func(t *rapid.T) {
				if policy != SyncAlways {
					t.Skip("only SyncAlways loses nothing in a crash")
				}
				l.crash()
				twin.crash()
				reopen(t)
				m.cursor = 0
				prevDropped, prevDroppedBytes = 0, 0 // a new Log counts from zero
			},
		})
	})
}

// checkTwin fails if the Log and its scan-only twin differ in their counters or in a segment's
// trimmed prefix; with whole, in anything they know of their segments (under SyncInterval the
// background commit writes their buffers at different times).
func checkTwin(t *rapid.T, l, twin *Log, whole bool) {
	if a, b := comparableStats(l.Stats()), comparableStats(twin.Stats()); a != b {
		t.Fatalf("stats differ:\nlog  %+v\ntwin %+v", a, b)
	}
	a, b := segSnapshots(l), segSnapshots(twin)
	if len(a) != len(b) {
		t.Fatalf("%d segments, the twin %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if !whole {
			x = segSnapshot{index: x.index, trim: x.trim, trimRecs: x.trimRecs, trimBytes: x.trimBytes}
			y = segSnapshot{index: y.index, trim: y.trim, trimRecs: y.trimRecs, trimBytes: y.trimBytes}
		}
		if x != y {
			t.Fatalf("segment %d differs:\nlog  %+v\ntwin %+v", i, x, y)
		}
	}
}

func checkRecovered(t *rapid.T, l *Log) {
	rec := l.Recovery()
	if rec.LostRecords != 0 || len(rec.Damage) != 0 {
		t.Fatalf("clean restart found damage: %+v", rec)
	}
}

// tempDir is a fresh directory per rapid run, removed when the run ends. It is on /dev/shm
// (tmpfs) where there is one: the model is about logic, and fsyncs there cost nothing.
func tempDir(t *rapid.T) string {
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "spill-model-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// drawRecord is record number n of a model test: up to 300 bytes, or, one time in bigOneIn, up
// to what one frame of a 4 KiB segment holds; it starts with n, then repeats a letter.
func drawRecord(t *rapid.T, n, bigOneIn int) []byte {
	size := rapid.IntRange(0, 300).Draw(t, "size")
	if rapid.IntRange(0, bigOneIn-1).Draw(t, "big") == 0 {
		size = rapid.IntRange(1000, 4096-segmentHeaderSize-frameHeaderSize).Draw(t, "bigSize")
	}
	rec := bytes.Repeat([]byte{byte('a' + n%26)}, size)
	copy(rec, fmt.Sprint(n))
	return rec
}
