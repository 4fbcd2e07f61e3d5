package spill

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	crashChildEnv   = "PHAROS_SPILL_CRASH_CHILD" // the directory the child appends to
	crashRoundEnv   = "PHAROS_SPILL_CRASH_ROUND"
	crashSegment    = 16 << 10
	crashMaxRecords = 1 << 30
)

// crashPayload is what the child appends as its n-th record of a round: recognizable, so that
// the parent can tell a real record from an invented one, and of varied sizes, so that segments
// fill up and rotate while the child is being killed.
func crashPayload(round, g, n int) []byte {
	size := 24 + (n*37+round*11+g*5)%600
	b := make([]byte, size)
	h := fmt.Sprintf("r%d g%d n%d ", round, g, n)
	copy(b, h)
	for i := len(h); i < size; i++ {
		b[i] = byte('A' + (round+n+i)%26)
	}
	return b
}

func parseCrashPayload(b []byte) (a ack, ok bool) {
	if _, err := fmt.Sscanf(string(b), "r%d g%d n%d ", &a.round, &a.g, &a.n); err != nil {
		return a, false
	}
	return a, bytes.Equal(b, crashPayload(a.round, a.g, a.n))
}

// ack identifies a record the child appended: round, goroutine, number.
type ack struct{ round, g, n int }

// crashAppenders is the number of goroutines appending at once in the child (so that group
// commits are killed too).
const crashAppenders = 4

// crashChild runs in the re-executed test binary: crashAppenders goroutines append under
// SyncAlways, each printing "seq g n" once its Append has returned, until the process is killed.
func crashChild() {
	dir := os.Getenv(crashChildEnv)
	round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
	go func() { time.Sleep(30 * time.Second); os.Exit(3) }() // never outlive a lost parent
	l, err := Open(dir, WithSync(SyncAlways), WithSegmentSize(crashSegment), WithMaxBytes(crashMaxRecords))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stdout, "ready")
	for g := range crashAppenders {
		go func() {
			for n := 0; ; n++ {
				seq, err := l.Append(crashPayload(round, g, n))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				// Unbuffered, one write(2) per acknowledgement: lines never interleave.
				fmt.Fprintf(os.Stdout, "%d %d %d\n", seq, g, n)
			}
		}()
	}
	select {}
}

// TestCrashSIGKILL kills a child appending under SyncAlways at random moments, 50 times, and
// checks after each kill that every record whose Append had returned is there, in order, and
// that nothing was invented: the only records beyond the acknowledged ones a round may leave are
// those its goroutines were appending when it died, one each at most.
func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PHAROS_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("random seed %d (set PHAROS_CRASH_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	acked := map[uint64]ack{} // every acknowledged record, all rounds
	var next uint64           // past every number earlier rounds left in the log or acknowledged
	start := time.Now()
	const rounds = 50
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSIGKILL$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Wait until the child has opened the log (recovery included), then let it append for
		// a random while and kill it.
		select {
		case l := <-lines:
			if l != "ready" {
				t.Fatalf("round %d: child said %q", round, l)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("round %d: child not ready: %s", round, stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var roundAcks []ack
		var roundSeqs []uint64
		for l := range lines {
			f := strings.Fields(l)
			if len(f) != 3 {
				t.Fatalf("round %d: bad line %q", round, l)
			}
			seq, _ := strconv.ParseUint(f[0], 10, 64)
			g, _ := strconv.Atoi(f[1])
			n, _ := strconv.Atoi(f[2])
			roundSeqs = append(roundSeqs, seq)
			roundAcks = append(roundAcks, ack{round, g, n})
		}
		wg.Wait()
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die of SIGKILL: %v; stderr: %s", round, err, stderr.String())
		}
		// Concurrent appenders print in any order; the sequence must still start past
		// everything earlier rounds had.
		roundNext := next
		for i, seq := range roundSeqs {
			if seq < next {
				t.Fatalf("round %d: sequence went back: %d, earlier rounds had up to %d", round, seq, next-1)
			}
			roundNext = max(roundNext, seq+1)
			acked[seq] = roundAcks[i]
		}

		// Recover and check.
		l := mustOpen(t, dir, WithSync(SyncAlways), WithSegmentSize(crashSegment), WithMaxBytes(crashMaxRecords))
		recs := readAll(t, l)
		rec := l.Recovery()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		present := map[uint64]bool{}
		var logNext uint64 // past the last record in the log
		unacked := 0
		for _, r := range recs {
			if r.Seq < logNext {
				t.Fatalf("round %d: records out of order: %d after %d", round, r.Seq, logNext-1)
			}
			logNext = r.Seq + 1
			present[r.Seq] = true
			got, ok := parseCrashPayload(r.Data)
			if !ok {
				t.Fatalf("round %d: invented record seq %d: %q", round, r.Seq, r.Data)
			}
			if a, ok := acked[r.Seq]; ok {
				if a != got {
					t.Fatalf("round %d: seq %d holds %+v, acknowledged %+v", round, r.Seq, got, a)
				}
				continue
			}
			// Not acknowledged: only a record in flight when its child died may be here: the
			// one right after its goroutine's last acknowledged record.
			unacked++
			want := 0
			for _, a := range acked {
				if a.round == got.round && a.g == got.g && a.n+1 > want {
					want = a.n + 1
				}
			}
			if got.n != want {
				t.Fatalf("round %d: unacknowledged record %+v is not the one in flight (n%d)", round, got, want)
			}
			acked[r.Seq] = got // from now on it must stay
		}
		for seq, a := range acked {
			if !present[seq] {
				t.Fatalf("round %d: acknowledged record seq %d (r%d n%d) is missing; recovery %+v", round, seq, a.round, a.n, rec)
			}
		}
		next = max(next, logNext, roundNext)
		if round%10 == 9 || round == rounds-1 {
			t.Logf("round %d: %d records acknowledged so far, %d in the log, %d unacknowledged kept this round; torn bytes %d, lost %d",
				round, len(acked), len(recs), unacked, rec.TornBytes, rec.LostRecords)
		}
	}
	t.Logf("%d rounds in %v", rounds, time.Since(start).Round(time.Millisecond))
}
