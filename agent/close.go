package agent

import (
	"context"
	"fmt"
	"time"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"
)

// Close stops accepting records, keeps delivering until everything accepted is delivered (in
// ModeAcked: acknowledged) or ctx is done, then stops the connection manager: its lifetime
// context is cancelled (a transport call in progress returns at once) and, as it terminates, it
// appends what is left in RAM and in its inbox to the spill directory (where the next Start
// with the same directory picks it up), or to its log. Close then closes the spill directory
// and stops the agent's own node. Without a spill directory what is left is lost, and Close
// says how much with ErrRecordsLeft. With a ctx already done, Close spills at once.
//
// Close waits for the manager to finish the handler it is in, however long that takes (a local
// disk write, never a network call once its context is cancelled), logging a warning every
// few seconds; it never kills it. A second Close returns ErrClosed.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	a.closed = true
	a.mu.Unlock()

	var drained bool
	var left, spilled, lost int
	if a.cluster != nil {
		drained, left, spilled, lost = a.closeCluster(ctx)
	} else {
		drained, left, spilled, lost = a.closeService(ctx)
	}
	a.release()
	a.done.Store(true)
	a.log.Info().Bool("drained", drained).Int("left", left).Int("spilled", spilled).Int("lost", lost).
		Uint64("accepted", a.accepted.Load()).Msg("agent closed")
	if lost > 0 {
		return fmt.Errorf("%w: %d", ErrRecordsLeft, lost)
	}
	return nil
}

// closeService is Close's work with the single connection manager.
func (a *Agent) closeService(ctx context.Context) (drained bool, left, spilled, lost int) {
	drained = a.svc.WaitDrained(ctx) == nil
	left = a.held() + a.inbox.Len()
	hb, err := a.svc.Stop(ctx)
	for err != nil {
		a.log.Warn().Int("held", a.held()).Msg("waiting for the connection manager to leave its handler and hand its tiers back")
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hb, err = a.svc.Stop(stopCtx)
		cancel()
	}
	lost = hb.Lost
	if a.memLog != nil {
		lost += a.memLog.Len() // a RAM log ends with the process
	}
	return drained, left, hb.Spilled, lost
}

// release closes the spill log and stops the agent's own node.
func (a *Agent) release() {
	if a.spill != nil {
		if err := a.spill.Close(); err != nil {
			a.log.Error().Err(err).Msg("close spill directory")
		}
	}
	if a.ownNode != nil {
		a.ownNode.Stop()
	}
}

// ergoLogger sends Ergo's own log lines to zerolog.
type ergoLogger struct{ log zerolog.Logger }

func (l ergoLogger) Log(m gen.MessageLog) {
	var ev *zerolog.Event
	switch {
	case m.Level >= gen.LogLevelError:
		ev = l.log.Error()
	case m.Level == gen.LogLevelWarning:
		ev = l.log.Warn()
	case m.Level == gen.LogLevelInfo:
		ev = l.log.Info()
	default:
		ev = l.log.Debug()
	}
	ev.Str("component", "ergo").Msgf(m.Format, m.Args...)
}

func (ergoLogger) Terminate() {}
