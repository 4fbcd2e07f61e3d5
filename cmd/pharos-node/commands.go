package main

// registeredCommands wires every subcommand to its implementation.
func registeredCommands() map[string]command {
	return map[string]command{
		"version": {run: runVersion, summary: "print the version"},
	}
}
