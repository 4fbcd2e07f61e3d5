package buffer

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkPush: one producer into a full ring, so every Push also evicts one record (the
// steady state when the consumer is away). Goal: 20 million pushes/s, i.e. <= 50 ns/op.
func BenchmarkPush(b *testing.B) {
	r, _ := New(1<<16, 1<<30)
	rec := make([]byte, 100)
	var ev [][]byte
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ev = r.Push(rec, ev[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpush/s")
}

// BenchmarkPushParallel: GOMAXPROCS producers at once against one mutex.
func BenchmarkPushParallel(b *testing.B) {
	r, _ := New(1<<16, 1<<30)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rec := make([]byte, 100)
		var ev [][]byte
		for pb.Next() {
			ev = r.Push(rec, ev[:0])
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpush/s")
}

// BenchmarkPushDrain: a producer and a consumer draining batches of 512 at the same time; ns/op
// is per record pushed.
func BenchmarkPushDrain(b *testing.B) {
	r, _ := New(1<<16, 1<<30)
	rec := make([]byte, 100)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		batch := make([][]byte, 0, 512)
		for {
			batch = r.DrainN(batch[:0], 512)
			if len(batch) == 0 {
				select {
				case <-done:
					return
				case <-r.Ready():
				}
			}
		}
	}()
	var ev [][]byte
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ev = r.Push(rec, ev[:0])
	}
	b.StopTimer()
	close(done)
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpush/s")
}

// BenchmarkDrain: one op is 512 pushes then one DrainN of 512; ns/record is the cost of pushing
// and draining one record, drain/record the drain's share.
func BenchmarkDrain(b *testing.B) {
	r, _ := New(1<<16, 1<<30)
	rec := make([]byte, 100)
	batch := make([][]byte, 0, 512)
	b.ReportAllocs()
	var pushing time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range 512 {
			r.Push(rec, nil)
		}
		pushing += time.Since(t0)
		batch = r.DrainN(batch[:0], 512)
	}
	n := float64(b.N) * 512
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64((b.Elapsed()-pushing).Nanoseconds())/n, "drain-ns/record")
}

// BenchmarkRAMPerRecord reports the heap held per buffered 100-byte record: the record's own
// allocation (rounded up to its size class) plus its 24-byte slot.
func BenchmarkRAMPerRecord(b *testing.B) {
	const n = 1 << 20
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, _ := New(n, 1<<30)
		for range n {
			r.Push(make([]byte, 100), nil)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/record")
		runtime.KeepAlive(r)
	}
}
