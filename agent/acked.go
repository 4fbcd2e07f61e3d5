package agent

// The acknowledged mode's parts of Agent that are not in agent.go.

import (
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/spill"
	"github.com/pharos-node/pharos-node/tier"
)

// ackedSpillOptions are appended to Options.SpillOptions in ModeAcked, after the caller's, so
// they win: the spill directory refuses records when it is full (spill.Refuse) instead of
// dropping its oldest segment, which would delete records the Brain has not acknowledged and
// leave a hole in the numbering. A refused record is counted as dropped by the manager
// (pharos_fsm_dropped_total) and the caller's record is lost, never an acknowledged stream's
// middle. Size the directory (spill.WithMaxBytes) for the longest Brain outage to ride out.
//
// The connection manager, the log's only reader, uses a record's bytes only until it trims the
// record (fsm.SeqLog's contract): the log may write new records into the memory of trimmed
// ones (spill.WithReadsReleasedByTrim) instead of taking fresh memory per megabyte.
func ackedSpillOptions() []spill.Option {
	return []spill.Option{spill.WithOverflow(spill.Refuse), spill.WithReadsReleasedByTrim()}
}

// AckedNextSeq returns, in ModeAcked, the sequence number the next record stored will get, which
// is how many records the agent's log has ever stored: across restarts on the same spill
// directory (the spill log numbers densely from 0), or since Start for a RAM log. ok is false in the
// other modes. Safe for concurrent use.
func (a *Agent) AckedNextSeq() (next uint64, ok bool) {
	switch {
	case a.cluster != nil && a.opts.Mode == ModeAcked:
		return a.cluster.NextSeq(), true // every shard's log together
	case a.spill != nil && a.opts.Mode == ModeAcked:
		return a.spill.NextSeq(), true
	case a.memLog != nil:
		return a.memLog.NextSeq(), true
	}
	return 0, false
}

// Unacknowledged returns how many accepted records the agent still holds: in ModeAcked, those
// stored and not yet acknowledged (on disk or in the RAM log); in the other modes, those in the
// ring or on disk. Records still in the manager's inbox are not counted. Safe for concurrent
// use.
func (a *Agent) Unacknowledged() int { return a.held() }

// The acknowledged mode's logs: the spill directory itself, or a RAM log.
var (
	_ fsm.SeqLog = (*spill.Log)(nil)
	_ fsm.SeqLog = (*tier.MemoryLog)(nil)
)
