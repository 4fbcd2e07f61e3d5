package brain

import (
	"context"
	"fmt"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/node"
)

// The queue limit: backpressure on the Brain's mailbox, which Erlang distribution lacks.

// QueueLimit is the Brain transport's backpressure. Erlang distribution has none towards a
// slow process: a Brain that takes each message slowly lets its mailbox grow without bound
// while the sender sees nothing (delivery confirmations only tell that messages reached the
// mailbox, not that they were processed). With Max set, the transport keeps an upper bound of
// the Brain's message queue: the length it last measured (rpc through rex:
// erlang:process_info(Pid, message_queue_len)) plus every message it sent since. It sends only
// while that bound is below Max, and measures again before a send would take it past Max (at
// most once per Every):
// the Brain's queue never holds more than Max messages from this sender, and a Brain that keeps
// up costs one measurement per Max messages sent. Beyond the limit, Deliver and DeliverBatch
// send what fits and fail with ErrBusy (wrapping fsm.ErrPeerBusy): the manager keeps the rest,
// keeps the connection, and tries again at its next drain turn (Throttled).
type QueueLimit struct {
	Max   int           // messages; 0 switches the check off
	Every time.Duration // least time between two measurements; default 20 ms
}

// DefaultQueueMax is a Max for QueueLimit that keeps a Brain's mailbox to about a third of a
// second of the reference Brain's work (150,000 payload messages a second on a small machine),
// some 10-20 MB, while letting a backlog drain at up to Max messages per drain turn.
const DefaultQueueMax = 50_000

// ErrBusy: the Brain's message queue is at QueueLimit.Max. It wraps fsm.ErrPeerBusy.
var ErrBusy = fmt.Errorf("brain: Brain busy (message queue at the limit): %w", fsm.ErrPeerBusy)

// rpc calls Module:Function(Args...) on the Brain's node through its rex server, from the
// manager's process, within timeout.
func (t *brainTransport) rpc(ctx context.Context, module, function string, args ...any) (any, error) {
	timeout := 5
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(1, int(time.Until(dl).Seconds()))
	}
	request := etf.Tuple{etf.Atom("call"), etf.Atom(module), etf.Atom(function), etf.List(args), etf.Atom("user")}
	return t.proc.CallWithTimeout(gen.ProcessID{Name: "rex", Node: gen.Atom(t.brain.target.Node)}, request, timeout)
}

// room enforces QueueLimit: how many of n messages may be sent now (at least one), or ErrBusy.
func (t *brainTransport) room(ctx context.Context, n int) (int, error) {
	q := t.brain.queue
	if q.Max == 0 {
		return n, nil
	}
	// The bound is used while everything fits, or while it is too fresh to measure again; a
	// send that would reach the limit measures first, so a Brain that keeps up is not taken
	// for busy once every Max messages.
	if !t.checkedAt.IsZero() && (t.queued+n <= q.Max || time.Since(t.checkedAt) < q.Every) {
		if t.queued < q.Max {
			return min(n, q.Max-t.queued), nil
		}
		return 0, fmt.Errorf("%w: %d messages queued or sent since (limit %d)", ErrBusy, t.queued, q.Max)
	}
	if c := t.conn; c != nil && c.Congested() {
		// The Brain's node is not even reading what we sent: as busy as can be, and the
		// calls below would wait for room in the buffer (up to the tick time), not answer.
		return 0, fmt.Errorf("%w: the connection's send buffer is full", ErrBusy)
	}
	pid, err := t.whereis(ctx)
	if err != nil {
		return 0, err
	}
	info, err := t.rpc(ctx, "erlang", "process_info", pid, etf.Atom("message_queue_len"))
	if err != nil {
		return 0, fmt.Errorf("brain: Brain queue length: %w", err)
	}
	tuple, ok := info.(etf.Tuple)
	if !ok || len(tuple) != 2 {
		// undefined: the process is gone; its DOWN is on its way.
		return 0, &Error{Target: t.brain.target, Step: "queue check", Err: node.ErrNoSuchProcess}
	}
	length, ok := tuple[1].(int64)
	if !ok {
		return 0, fmt.Errorf("brain: Brain queue length: unexpected reply %v", info)
	}
	t.checkedAt, t.queued = time.Now(), int(min(length, int64(q.Max)))
	if length >= int64(q.Max) {
		return 0, fmt.Errorf("%w: %d messages queued (limit %d)", ErrBusy, length, q.Max)
	}
	return min(n, q.Max-t.queued), nil
}

// sent adds n messages sent to the bound on the Brain's queue.
func (t *brainTransport) sent(n int) {
	if t.brain.queue.Max > 0 {
		t.queued += n
	}
}
