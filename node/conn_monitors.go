package node

// Monitors: the peer's monitors of local processes (monitorsIn) and ours of its processes
// (monitorsOut).

import "ergo.services/ergo/gen"

type outMonitor struct {
	local  gen.PID
	target Proc   // on the peer
	notify waiter // set by Probe: the exit goes here instead of gen.Core
}

type inMonitor struct {
	remote gen.PID
	target Proc // local
}

func (c *Conn) peerMonitor(m MonitorP) {
	var err error
	if m.To.Name != "" {
		err = c.core.RouteMonitorProcessID(m.From, gen.ProcessID{Name: m.To.Name, Node: c.self})
	} else {
		err = c.core.RouteMonitorPID(m.From, m.To.PID)
	}
	if err != nil {
		if m.To.Name == "net_kernel" {
			// gen:call monitors net_kernel before asking is_auth (net_adm:ping); the emulated
			// net_kernel (answerIsAuth) never ends, so the monitor never fires.
			return
		}
		// no such process: the monitor fires at once with reason noproc.
		c.sendControlNow(MonitorPExit{From: m.To, To: m.From, Ref: m.Ref, Reason: encodeReason(gen.ErrProcessUnknown)}, nil, false)
		return
	}
	c.stateMu.Lock()
	c.monitorsIn[m.Ref] = inMonitor{remote: m.From, target: m.To}
	c.stateMu.Unlock()
}

func (c *Conn) peerDemonitor(m DemonitorP) {
	c.stateMu.Lock()
	mon, ok := c.monitorsIn[m.Ref]
	delete(c.monitorsIn, m.Ref)
	stillWatched := false
	for _, other := range c.monitorsIn {
		if other.remote == mon.remote && other.target == mon.target {
			stillWatched = true
		}
	}
	c.stateMu.Unlock()
	if !ok || stillWatched {
		return
	}
	if mon.target.Name != "" {
		c.core.RouteDemonitorProcessID(mon.remote, gen.ProcessID{Name: mon.target.Name, Node: c.self})
	} else {
		c.core.RouteDemonitorPID(mon.remote, mon.target.PID)
	}
}

func (c *Conn) monitorFired(m MonitorPExit) {
	c.stateMu.Lock()
	mon, ok := c.monitorsOut[m.Ref]
	delete(c.monitorsOut, m.Ref)
	c.stateMu.Unlock()
	if !ok {
		return
	}
	reason := decodeReason(m.Reason)
	if mon.notify != nil {
		mon.notify <- reason
		return
	}
	if mon.target.Name != "" {
		c.core.RouteTerminateProcessID(gen.ProcessID{Name: mon.target.Name, Node: c.Peer()}, reason)
		return
	}
	c.core.RouteTerminatePID(mon.target.PID, reason)
}
