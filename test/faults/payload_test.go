package faults

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
)

// payloadModes: the payload mode (the default), embedded and in the daemon, each with a spill
// directory, as configured out of the box (delivery.resend_unconfirmed: what a drop left
// unconfirmed is sent again, at least once) and at most once (resend_unconfirmed off: it is
// counted in possibly_lost).
func payloadModes() []mode {
	counted := func(t *testing.T, r result) {
		assert.Zero(t, r.refusals, "a spill directory takes everything at this rate")
		assert.Zero(t, r.duplicated, "without resend_unconfirmed, payload mode delivers at most once")
		require.LessOrEqualf(t, r.lost, int(r.counted),
			"every record missing at the Brain is counted in possibly_lost: accepted %d, at the Brain %+v", r.accepted, r.arrived)
	}
	resent := func(t *testing.T, r result) {
		assert.Zero(t, r.refusals, "a spill directory takes everything at this rate")
		require.Zerof(t, r.lost, "resend_unconfirmed: no record missing: accepted %d, at the Brain %+v", r.accepted, r.arrived)
		t.Logf("duplicates at the Brain: %d (possibly_lost %d)", r.duplicated, r.counted)
	}
	return []mode{
		{label: "payload", check: resent, start: func(t *testing.T, e env) sender {
			return startAgent(t, e, agent.ModePayload, nil)
		}},
		{label: "payload at most once", check: counted, start: func(t *testing.T, e env) sender {
			return startAgent(t, e, agent.ModePayload, func(c *fsm.Config) { c.Confirm.ResendUnconfirmed = false })
		}},
		{label: "daemon payload", check: resent, start: func(t *testing.T, e env) sender {
			return startDaemon(t, e, "payload", "")
		}},
		{label: "daemon payload at most once", check: counted, start: func(t *testing.T, e env) sender {
			return startDaemon(t, e, "payload", "  resend_unconfirmed: false\n")
		}},
	}
}

// TestPayloadFaults: through each fault, the payload mode loses none (resend_unconfirmed, the
// default), or counts every record it lost in possibly_lost (at most once).
func TestPayloadFaults(t *testing.T) {
	eachFault(t, payloadModes)
}
