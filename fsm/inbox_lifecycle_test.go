package fsm

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"
	"pgregory.net/rapid"
)

// signalWriter closes seen the first time a log line contains what.
type signalWriter struct {
	what []byte
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, w.what) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// TestInboxInitFailureRearmsNotification: a supervisor restarts the
// manager after a crash and the new incarnation's Init fails (its
// transport cannot be built), so the supervisor gives up. A record
// delivered while that Init ran was notified to a process Ergo had
// already registered under the name, and Ergo calls no Terminate for a
// failed Init: the failed Init itself must re-arm the notification, or
// every later Deliver would accept records into an inbox no process will
// ever take, instead of failing with ErrNotRunning.
func TestInboxInitFailureRearmsNotification(t *testing.T) {
	inbox := newInbox(t, 1000)
	node := startNode(t)
	sink := newFakeSink()
	var calls atomic.Int32
	var first gen.PID
	entered, release := make(chan struct{}), make(chan struct{})
	stopped := &signalWriter{what: []byte("connection manager crashed"), seen: make(chan struct{})}
	h := startSupervised(t, node, ActorOptions{
		Config: actorConfig(),
		NewTransport: func(p gen.Process) (Transport, error) {
			if calls.Add(1) == 1 {
				first = p.PID()
				return sink, nil
			}
			close(entered) // the restart's Init
			<-release
			return nil, errors.New("transport unavailable")
		},
		Ring: &lockedRing{r: newFakeRing(1000)}, Logger: zerolog.New(stopped), Inbox: inbox,
	}, gen.ProcessOptions{})
	eventually(t, "first connection", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.connects > 0 })

	if err := node.Kill(first); err != nil { // a crash: exit signals from others than the parent are ignored
		t.Fatal(err)
	}
	<-stopped.seen // the first incarnation's OnTerminate (rearm) has run
	<-entered      // the second one is in Init, its name registered

	if err := h.Deliver([]byte("during-init")); err != nil {
		t.Fatalf("deliver during Init: %v", err)
	}
	close(release)
	// Init fails; the supervisor cannot start the child and terminates.
	eventually(t, "manager gone", func() bool { return errors.Is(h.ConnectionLost(), ErrNotRunning) })

	err := h.Deliver([]byte("after"))
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("deliver with no manager left: %v, want ErrNotRunning (inbox holds %d records nobody will take)", err, inbox.Len())
	}
	time.Sleep(10 * time.Millisecond)
}

// TestInboxLifecycleModel (rapid): producers put, the actor takes on each
// notification, crashes (its pending notifications die, then OnTerminate
// re-arms) and restarts (Start takes). Whatever the interleaving: every
// accepted record is taken exactly once, in acceptance order, and once a
// running actor has handled its mailbox nothing is left in the inbox (no
// lost wake-up).
func TestInboxLifecycleModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		in, _ := NewInbox(rapid.IntRange(1, 5).Draw(rt, "limit"))
		running, pending := true, 0
		next, want := 0, 0
		take := func() {
			recs := in.take()
			for _, r := range recs {
				if got := int(r[0]); got != want {
					rt.Fatalf("took %d, want %d", got, want)
				}
				want++
			}
			in.recycle(recs)
		}
		notify := func() error {
			if !running {
				return ErrNotRunning
			}
			pending++
			return nil
		}
		rt.Repeat(map[string]func(*rapid.T){
			"put": func(rt *rapid.T) {
				if next == 255 {
					return
				}
				if err := in.put([]byte{byte(next)}, notify); err == nil {
					next++
				}
			},
			"handle": func(rt *rapid.T) {
				if running && pending > 0 {
					pending--
					take()
				}
			},
			"crash": func(rt *rapid.T) {
				if running {
					running, pending = false, 0
					in.rearm()
				}
			},
			"restart": func(rt *rapid.T) {
				if !running {
					running = true
					take() // Start
				}
			},
		})
		if !running {
			running = true
			take()
		}
		for pending > 0 {
			pending--
			take()
		}
		if in.Len() != 0 || want != next {
			rt.Fatalf("%d records left with no notification pending; took %d of %d", in.Len(), want, next)
		}
	})
}
