package main

// registeredCommands wires every subcommand to its implementation.
func registeredCommands() map[string]command {
	return map[string]command{
		"run":     {run: runRun, summary: "run the daemon: ingest (HTTP, StatsD, scrape, host) and deliver to the Brain"},
		"ping":    {run: runPing, summary: "connect to the Brain as a hidden node and measure the round trip"},
		"send":    {run: runSend, summary: "send N synthetic metrics to the Brain and report the rate"},
		"spill":   {run: runSpill, summary: "inspect, verify or repair a spill directory"},
		"version": {run: runVersion, summary: "print the version"},
		"health":  {run: runHealth, summary: "GET the daemon's /healthz (or /readyz): exit 0 on 200 (for container health checks)"},
	}
}
