package netfault

import (
	"context"
	"fmt"
	"time"
)

// The faults: one netdev table per end of the link (named ns.table on both sides), whose
// ingress chain holds the fault's rule; healing flushes the chains.

// tableScript creates the table with an empty ingress chain bound to dev.
func (ns *Namespace) tableScript(dev string) string {
	return fmt.Sprintf("table netdev %s {\n\tchain ingress {\n\t\ttype filter hook ingress device %q priority -500; policy accept;\n\t}\n}\n", ns.table, dev)
}

// nft runs an nft script on the host or inside the namespace.
func (ns *Namespace) nft(inside bool, script string) error {
	if inside {
		return run([]byte(script), "ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	}
	return run([]byte(script), "nft", "-f", "-")
}

// setRule replaces the rule of both ingress chains with rule ("" heals).
func (ns *Namespace) setRule(rule string) error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	script := fmt.Sprintf("flush chain netdev %s ingress\n", ns.table)
	if rule != "" {
		script += fmt.Sprintf("add rule netdev %s ingress %s\n", ns.table, rule)
	}
	// The namespace's side first, then the host's: a blackhole is in force on the host's
	// packets before it is on the namespace's; healing is the other way round, which does not
	// matter for a clean link.
	if err := ns.nft(true, script); err != nil {
		return err
	}
	if err := ns.nft(false, script); err != nil {
		return err
	}
	ns.fault = rule
	return nil
}

// Blackhole drops every packet on the link, both ways: no RST, no ICMP; each side sees
// silence.
func (ns *Namespace) Blackhole() error { return ns.setRule("drop") }

// Loss drops percent% of the packets on the link, drawn per packet and per direction;
// percent is 1..100.
func (ns *Namespace) Loss(percent int) error {
	if percent < 1 || percent > 100 {
		return fmt.Errorf("netfault: loss of %d%%: want 1..100", percent)
	}
	return ns.setRule(fmt.Sprintf("numgen random mod 100 < %d drop", percent))
}

// Heal removes the fault in force (Blackhole or Loss).
func (ns *Namespace) Heal() error { return ns.setRule("") }

// LinkDown sets the host's end of the link down.
func (ns *Namespace) LinkDown() error {
	return run(nil, "ip", "link", "set", "dev", ns.HostLink, "down")
}

// LinkUp sets the host's end of the link up again.
func (ns *Namespace) LinkUp() error { return run(nil, "ip", "link", "set", "dev", ns.HostLink, "up") }

// Window is one fault's span.
type Window struct {
	Start, End time.Time
}

// Flap takes the link down for down and up for up, cycles times (or until ctx is done; the
// link is always left up), and returns the spans it was down.
func (ns *Namespace) Flap(ctx context.Context, down, up time.Duration, cycles int) ([]Window, error) {
	var windows []Window
	for i := 0; i < cycles; i++ {
		w := Window{Start: time.Now()}
		if err := ns.LinkDown(); err != nil {
			return windows, err
		}
		sleepCtx(ctx, down)
		err := ns.LinkUp()
		w.End = time.Now()
		windows = append(windows, w)
		if err != nil {
			return windows, err
		}
		if ctx.Err() != nil {
			return windows, ctx.Err()
		}
		if i < cycles-1 {
			sleepCtx(ctx, up)
		}
	}
	return windows, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
