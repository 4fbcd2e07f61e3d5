package fsm

import (
	"errors"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gathered returns the value of the sample of family name whose labels
// include want.
func gathered(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			return value(m)
		}
	}
	t.Fatalf("no sample %s%v", name, want)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return 0
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg, prometheus.Labels{"sink": "brain"})
	if err != nil {
		t.Fatal(err)
	}
	spill := &fakeSpill{}
	h := newHarness(t, withMetrics(metrics), withSpill(spill), withRingCap(5))
	reach(t, h, Streaming)
	h.deliver("a")
	h.cast(EventConnectionLost)
	for _, r := range recs("r", 10) { // 5 spilled... then dropped: none
		h.deliver(r)
	}
	for name, tc := range map[string]struct {
		labels map[string]string
		want   float64
	}{
		"pharos_fsm_state":                  {map[string]string{"state": "disconnected", "sink": "brain"}, 1},
		"pharos_fsm_transitions_total":      {map[string]string{"from": "streaming", "to": "disconnected"}, 1},
		"pharos_fsm_delivered_total":        {nil, 1},
		"pharos_fsm_possibly_lost_total":    {nil, 1},
		"pharos_fsm_ring_records":           {nil, float64(h.ring.Len())},
		"pharos_fsm_spill_records":          {nil, float64(spill.Len())},
		"pharos_fsm_spill_bytes":            {nil, float64(spill.Bytes())},
		"pharos_fsm_connect_attempts_total": {map[string]string{"result": "ok"}, 1},
		"pharos_fsm_dropped_total":          {nil, 0},
		"pharos_fsm_backlog_records":        {nil, float64(h.ring.Len() + spill.Len())},
		"pharos_fsm_peer_busy_total":        {nil, 0},
	} {
		if got := gathered(t, reg, name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", name, tc.labels, got, tc.want)
		}
	}
	if got := gathered(t, reg, "pharos_fsm_backoff_seconds", nil); got <= 0 {
		t.Errorf("backoff = %v", got)
	}
	if got := gathered(t, reg, "pharos_fsm_drain_seconds_estimate", nil); !math.IsInf(got, 1) {
		t.Errorf("drain estimate while disconnected = %v, want +Inf", got)
	}
	if _, err := NewMetrics(reg, prometheus.Labels{"sink": "brain"}); !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		t.Fatalf("second registration: %v", err)
	}
	var nilMetrics *Metrics
	nilMetrics.addDropped(1) // a nil *Metrics records nothing, and does not panic
}
