// Command embed is a Go service that embeds Pharos Node: it starts an agent (its own hidden
// Erlang node) and delivers a gauge to the Brain every second until Ctrl-C, then closes the
// agent, which delivers what it holds or spills it to the spill directory.
//
//	PHAROS_COOKIE=secret go run . -brain brain@127.0.0.1
//
// Its go.mod shows what every module that embeds Pharos Node needs: the replace of
// ergo.services/ergo (see the README's Embedding section).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/node"
)

func main() {
	brain := flag.String("brain", "brain@127.0.0.1", "the Brain's node name")
	name := flag.String("name", "embed@127.0.0.1", "this service's node name")
	spillDir := flag.String("spill", "", "spill directory (optional)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()

	a, err := agent.Start(ctx, agent.Options{
		NodeName:    gen.Atom(*name),
		NodeOptions: node.Options{Cookie: os.Getenv("PHAROS_COOKIE")},
		Brain:       agent.Target{Node: gen.Atom(*brain), Name: "pharos_brain"},
		Mode:        agent.ModePayload,
		SpillDir:    *spillDir,
		Logger:      log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case now := <-tick.C:
			err := a.DeliverMetric(etf.Metric{Name: "embed.heartbeat", Kind: etf.Gauge, Value: 1,
				Tags: []etf.Tag{{Key: "service", Value: "embed"}}, TimestampMs: now.UnixMilli(), Source: "embed"})
			if err != nil {
				log.Warn().Err(err).Msg("not accepted")
			}
		}
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Close(closeCtx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
