package agent

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/node"
)

// Sink is another destination than the Brain: the connection manager delivers the same
// records (term_to_binary of each Metric and Alert), through the same states, ring, spill
// directory, backoff and throttling, with the transports it builds. *otlpsink.Sink is one
// (an OTLP/HTTP receiver, such as an OpenTelemetry Collector).
type Sink interface {
	// NewTransport is fsm.ActorOptions.NewTransport: one transport per incarnation of the
	// connection manager, built in its Init.
	NewTransport(p gen.Process) (fsm.Transport, error)
	// String names the sink in logs.
	String() string
}

// sinkDefaults checks the options that a Sink changes: no Brain needed, ModePayload only (the
// other modes are the Brain's framings; acked needs the Brain's acknowledgements), no
// BrainQueue; an own node needs no cookie (it never connects to another node) and claims no
// name in EPMD.
func (o *Options) sinkDefaults() error {
	if o.Sink == nil {
		return nil
	}
	if o.Mode != ModePayload {
		return fmt.Errorf("%w: Mode %v needs the Brain; a Sink takes ModePayload only", ErrInvalidOptions, o.Mode)
	}
	if o.BrainQueue.Max != 0 {
		return fmt.Errorf("%w: BrainQueue is the Brain's; not with a Sink", ErrInvalidOptions)
	}
	if o.Node == nil {
		if o.NodeOptions.Cookie == "" {
			var b [16]byte
			if _, err := rand.Read(b[:]); err != nil {
				return fmt.Errorf("agent: cookie: %w", err)
			}
			o.NodeOptions.Cookie = hex.EncodeToString(b[:])
		}
		o.NodeOptions.Names = node.NamesUnclaimed
	}
	return nil
}

// newTransport is the manager's transport factory: the Sink's, else the Brain's.
func (a *Agent) newTransport() func(gen.Process) (fsm.Transport, error) {
	if a.opts.Sink != nil {
		return a.opts.Sink.NewTransport
	}
	return a.brain.NewTransport
}

// logTarget names where records go in the start log line.
func (a *Agent) logTarget(ev *zerolog.Event) {
	if a.opts.Sink != nil {
		ev.Str("sink", a.opts.Sink.String())
		return
	}
	ev.Str("brain_node", a.opts.Brain.Node).Str("brain_name", a.opts.Brain.Name)
}
