package faults

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/agent"
)

// ackedModes: the acknowledged mode, embedded and in the daemon, each with a spill directory.
func ackedModes() []mode {
	check := func(t *testing.T, r result) {
		assert.Zero(t, r.refusals, "a spill directory takes everything at this rate")
		require.Truef(t, r.arrived.Exactly(int64(r.accepted)),
			"acked: every record exactly once, in order: accepted %d, at the Brain %+v", r.accepted, r.arrived)
	}
	return []mode{
		{label: "acked", acked: true, check: check, start: func(t *testing.T, e env) sender {
			return startAgent(t, e, agent.ModeAcked, nil)
		}},
		{label: "daemon acked", acked: true, check: check, start: func(t *testing.T, e env) sender {
			return startDaemon(t, e, "acked", "")
		}},
	}
}

// TestAckedFaults: through each fault, the acknowledged mode delivers every record exactly
// once, in order.
func TestAckedFaults(t *testing.T) {
	eachFault(t, ackedModes)
}
