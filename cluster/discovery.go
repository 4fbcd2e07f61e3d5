package cluster

import (
	"context"
	"fmt"
	"sort"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/node"
)

// discovery finds the members in a pg group. A hidden node is in no pg scope (pg talks to
// nodes() only), so it asks a seed: pg:monitor/2's call to the seed's scope process, made
// from here (see monitorRequest), which answers the members and then sends {Ref, join|leave,
// Group, Pids} as they change (OTP 25.1 and later); on a seed without pg:monitor/2 (OTP 25.0),
// of a release whose protocol is not known, or with PG.Poll, it asks pg:get_members/2 by rpc
// every PollInterval. When the seed's connection ends it moves to
// the next seed and subscribes again. Each member pid is resolved to its registered name by rpc
// on its node (erlang:process_info(Pid, registered_name)): the transport addresses {Name, Node};
// an unregistered member is skipped with a warning.
type discovery struct {
	act.Actor
	r   *Router
	cfg PG

	seed       int // index of the seed in use, or to try next
	conn       *node.Conn
	ref        gen.Ref // of the monitor on the seed's scope
	monitoring bool
	pids       map[gen.PID]string // member pid -> member key; "" while unresolved
	targets    map[string]brain.Target
	warned     map[gen.PID]bool
}

type (
	discoveryTick struct{}
	seedLost      struct{ conn *node.Conn }
)

func (d *discovery) Init(args ...any) error {
	d.r = args[0].(*Router)
	d.cfg = *d.r.opts.Discovery
	d.pids, d.targets, d.warned = map[gen.PID]string{}, map[string]brain.Target{}, map[gen.PID]bool{}
	return d.Send(d.PID(), discoveryTick{})
}

func (d *discovery) HandleMessage(from gen.PID, message any) error {
	switch m := message.(type) {
	case discoveryTick:
		switch {
		case d.conn == nil:
			d.subscribe()
		case !d.monitoring:
			d.poll()
		}
		if d.resolve() {
			d.report() // a member whose node or rpc failed when it joined, resolved now
		}
		next := d.cfg.PollInterval
		if d.conn == nil {
			next = min(next, d.r.opts.HealthInterval)
		}
		if _, err := d.SendAfter(d.PID(), discoveryTick{}, next); err != nil {
			return err
		}
	case seedLost:
		if m.conn == d.conn {
			d.r.log.Warn().Err(m.conn.Err()).Str("seed", d.cfg.Seeds[d.seed]).Msg("pg discovery: seed lost; asking the next one")
			d.conn, d.monitoring, d.ref = nil, false, gen.Ref{}
			d.seed = (d.seed + 1) % len(d.cfg.Seeds)
			d.status(fmt.Errorf("seed lost: %w", m.conn.Err()))
			return d.Send(d.PID(), discoveryTick{})
		}
	case etf.Tuple:
		d.notification(m)
	}
	return nil
}

// subscribe connects to the current seed and asks it for the members (and their changes).
func (d *discovery) subscribe() {
	seed := d.cfg.Seeds[d.seed]
	ctx, cancel := context.WithTimeout(d.r.ctx, d.r.connectTimeout())
	conn, err := d.r.opts.Connector.Connect(ctx, gen.Atom(seed))
	cancel()
	if err != nil {
		d.r.log.Warn().Err(err).Str("seed", seed).Msg("pg discovery: seed unreachable; trying the next one")
		d.seed = (d.seed + 1) % len(d.cfg.Seeds)
		d.status(err)
		return
	}
	d.conn = conn
	self, n, done := d.PID(), d.r.opts.Node, d.r.ctx.Done()
	go func() {
		select {
		case <-conn.Done():
			_ = n.Send(self, seedLost{conn: conn})
		case <-done:
		}
	}()
	var request any
	if !d.cfg.Poll {
		request = d.monitorRequest(seed)
	}
	if request == nil {
		d.r.log.Info().Str("seed", seed).Dur("interval", d.cfg.PollInterval).Msg("pg discovery: polling pg:get_members/2")
		d.poll()
		return
	}
	reply, err := d.CallWithTimeout(gen.ProcessID{Name: gen.Atom(d.cfg.Scope), Node: gen.Atom(seed)}, request, d.callTimeout())
	t, ok := reply.(etf.Tuple)
	if err != nil || !ok || len(t) != 2 {
		d.r.log.Warn().Err(err).Str("seed", seed).Str("reply", fmt.Sprint(reply)).Msg("pg discovery: pg:monitor/2 failed; polling")
		d.poll()
		return
	}
	ref, ok1 := t[0].(gen.Ref)
	pids, ok2 := pidList(t[1])
	if !ok1 || !ok2 {
		d.r.log.Warn().Str("reply", fmt.Sprint(reply)).Msg("pg discovery: unexpected pg:monitor/2 reply; polling")
		d.poll()
		return
	}
	d.ref, d.monitoring = ref, true
	d.r.log.Info().Str("seed", seed).Int("members", len(pids)).Msg("pg discovery: following the group (pg:monitor/2)")
	d.replace(pids)
}

// monitorRequest is the call pg:monitor(Scope, Group) makes to the scope process on the seed's
// release, or nil when that release is not one whose protocol is known (then discovery polls).
// The scope process has no clause for a call it does not know: it would crash, and the Brains
// on the seed would drop out of the group. OTP 25.1 to 28 (kernel 8.5 to 10.x) call
// {monitor, Group}; OTP 29 (kernel 11) calls data_publisher's {subscribe, {group, Group}}.
func (d *discovery) monitorRequest(seed string) any {
	v, err := d.rpc(seed, "application", "get_key", etf.Atom("kernel"), etf.Atom("vsn"))
	t, ok := v.(etf.Tuple)
	if err != nil || !ok || len(t) != 2 || atomName(t[0]) != "ok" {
		return nil
	}
	major, minor, ok := kernelVersion(t[1])
	if !ok {
		return nil
	}
	exported := func(module, function string) bool {
		v, err := d.rpc(seed, "erlang", "function_exported", etf.Atom(module), etf.Atom(function), 2)
		return err == nil && isTrue(v)
	}
	switch {
	case major == 11 && exported("data_publisher", "subscribe"):
		return etf.Tuple{etf.Atom("subscribe"), etf.Tuple{etf.Atom("group"), etf.Atom(d.cfg.Group)}}
	case (major == 8 && minor >= 5 || major == 9 || major == 10) && exported("pg", "monitor"):
		return etf.Tuple{etf.Atom("monitor"), etf.Atom(d.cfg.Group)}
	}
	return nil
}

// kernelVersion reads the major and minor numbers of a kernel vsn ("8.5.3", a charlist).
func kernelVersion(v any) (major, minor int, ok bool) {
	var text []byte
	switch x := v.(type) {
	case etf.List:
		for _, c := range x {
			b, isInt := c.(int64)
			if !isInt || b < 0 || b > 127 {
				return 0, 0, false
			}
			text = append(text, byte(b))
		}
	case string:
		text = []byte(x)
	default:
		return 0, 0, false
	}
	n, err := fmt.Sscanf(string(text), "%d.%d", &major, &minor)
	return major, minor, err == nil && n == 2
}

// poll asks the seed for the members.
func (d *discovery) poll() {
	seed := d.cfg.Seeds[d.seed]
	v, err := d.rpc(seed, "pg", "get_members", etf.Atom(d.cfg.Scope), etf.Atom(d.cfg.Group))
	pids, ok := pidList(v)
	if err != nil || !ok {
		d.r.log.Warn().Err(err).Str("seed", seed).Str("reply", fmt.Sprint(v)).Msg("pg discovery: pg:get_members/2 failed")
		d.status(fmt.Errorf("pg:get_members/2 on %s: %v %v", seed, err, v))
		return
	}
	d.replace(pids)
}

// notification handles {Ref, join | leave, Group, Pids} from the seed's scope.
func (d *discovery) notification(t etf.Tuple) {
	if len(t) != 4 || !d.monitoring {
		return
	}
	if ref, ok := t[0].(gen.Ref); !ok || ref != d.ref {
		return // of an earlier subscription
	}
	pids, ok := pidList(t[3])
	if !ok {
		return
	}
	switch atomName(t[1]) {
	case "join":
		for _, p := range pids {
			if _, known := d.pids[p]; !known {
				d.pids[p] = ""
			}
		}
	case "leave":
		for _, p := range pids {
			delete(d.pids, p)
		}
	default:
		return
	}
	d.resolve()
	d.report()
}

// replace makes pids the members.
func (d *discovery) replace(pids []gen.PID) {
	next := make(map[gen.PID]string, len(pids))
	for _, p := range pids {
		next[p] = d.pids[p]
	}
	d.pids = next
	d.resolve()
	d.report()
}

// resolve finds the registered name of each member pid not resolved yet, and says whether it
// found any.
func (d *discovery) resolve() (found bool) {
	for p, key := range d.pids {
		if key != "" {
			continue
		}
		ctx, cancel := context.WithTimeout(d.r.ctx, d.r.connectTimeout())
		_, err := d.r.opts.Connector.Connect(ctx, p.Node)
		cancel()
		var v any
		if err == nil {
			v, err = d.rpc(string(p.Node), "erlang", "process_info", p, etf.Atom("registered_name"))
		}
		if err != nil {
			continue // its node is unreachable from here for now: next tick
		}
		t, ok := v.(etf.Tuple)
		if !ok || len(t) != 2 || atomName(t[1]) == "" {
			if !d.warned[p] {
				d.warned[p] = true
				d.r.log.Warn().Str("pid", p.String()).Str("info", fmt.Sprint(v)).
					Msg("pg discovery: a group member is not a registered process (or ended); skipped")
			}
			continue
		}
		tgt := brain.Target{Node: string(p.Node), Name: atomName(t[1])}
		d.pids[p] = memberKey(tgt)
		d.targets[memberKey(tgt)] = tgt
		found = true
	}
	return found
}

// report hands the resolved members to the router.
func (d *discovery) report() {
	seen := map[string]bool{}
	var targets []brain.Target
	for _, key := range d.pids {
		if key != "" && !seen[key] {
			seen[key] = true
			targets = append(targets, d.targets[key])
		}
	}
	sort.Slice(targets, func(i, j int) bool { return memberKey(targets[i]) < memberKey(targets[j]) })
	d.r.setMembers(targets)
	d.status(nil)
}

func (d *discovery) status(err error) {
	s := DiscoveryStats{Seed: d.cfg.Seeds[d.seed], Connected: d.conn != nil, Monitoring: d.monitoring, Pids: len(d.pids)}
	if err != nil {
		s.LastError = err.Error()
	}
	d.r.setDiscoveryStats(s, err == nil)
}

func (d *discovery) callTimeout() int {
	return max(1, int(d.r.connectTimeout()/time.Second))
}

// rpc calls Module:Function(Args...) on nodeName through its rex server.
func (d *discovery) rpc(nodeName, module, function string, args ...any) (any, error) {
	request := etf.Tuple{etf.Atom("call"), etf.Atom(module), etf.Atom(function), etf.List(args), etf.Atom("user")}
	return d.CallWithTimeout(gen.ProcessID{Name: "rex", Node: gen.Atom(nodeName)}, request, d.callTimeout())
}

func pidList(v any) ([]gen.PID, bool) {
	l, ok := v.(etf.List)
	if !ok {
		return nil, false
	}
	out := make([]gen.PID, 0, len(l))
	for _, e := range l {
		p, ok := e.(gen.PID)
		if !ok {
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func atomName(v any) string {
	switch a := v.(type) {
	case gen.Atom:
		return string(a)
	case etf.Atom:
		return string(a)
	}
	return ""
}

func isTrue(v any) bool { return atomName(v) == "true" }
