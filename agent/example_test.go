package agent_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/spill"
)

// An agent whose Brain cannot be reached (no EPMD on port 1): the record it accepted is
// spilled at Close, and waits in the spill directory for the next Start.
func Example() {
	dir, err := os.MkdirTemp("", "pharos-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	a, err := agent.Start(context.Background(), agent.Options{
		NodeName:    "example@127.0.0.1",
		NodeOptions: node.Options{Cookie: "example-cookie", EPMDPort: 1},
		Brain:       agent.Target{Node: "brain@127.0.0.1", Name: "pharos_brain"},
		Mode:        agent.ModePayload,
		SpillDir:    dir,
	})
	if err != nil {
		panic(err)
	}
	err = a.DeliverMetric(etf.Metric{Name: "cpu.load", Kind: etf.Gauge, Value: 0.42,
		Tags: []etf.Tag{{Key: "host", Value: "a"}}, TimestampMs: 1_700_000_000_000, Source: "example"})
	fmt.Println("deliver:", err)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	fmt.Println("close:", a.Close(ctx))

	l, err := spill.Open(dir)
	if err != nil {
		panic(err)
	}
	defer l.Close()
	fmt.Println("waiting on disk:", l.Len())
	// Output:
	// deliver: <nil>
	// close: <nil>
	// waiting on disk: 1
}

// Records are validated before they are accepted: a NaN has no Erlang form.
func ExampleAgent_DeliverMetric_invalid() {
	a, err := agent.Start(context.Background(), agent.Options{
		NodeName:    "example_invalid@127.0.0.1",
		NodeOptions: node.Options{Cookie: "example-cookie", EPMDPort: 1},
		Brain:       agent.Target{Node: "brain@127.0.0.1", Name: "pharos_brain"},
	})
	if err != nil {
		panic(err)
	}
	defer a.Close(context.Background())
	err = a.DeliverMetric(etf.Metric{Name: "cpu.load", Kind: etf.Gauge, Value: math.NaN(), Source: "example"})
	fmt.Println(err)
	// Output:
	// etf: metric.value: etf: float is NaN or infinite
}

// ParseMode reads the delivery modes of docs/wire.md as configuration files name them.
func ExampleParseMode() {
	for _, s := range []string{"payload", "term", "subject", "acked", "carrier-pigeon"} {
		m, err := agent.ParseMode(s)
		fmt.Println(m, err)
	}
	// Output:
	// payload <nil>
	// term <nil>
	// subject <nil>
	// acked <nil>
	// payload agent: invalid options: unknown delivery mode "carrier-pigeon" (want payload, term, subject or acked)
}
