// Command pharos-node delivers telemetry from Go to a BEAM "Brain" over Erlang distribution,
// joining the Brain's cluster as a hidden node.
//
//	pharos-node <command> [flags]
//
// Run `pharos-node help` for the commands. main builds everything the commands use, zerolog's
// global settings included (configureLogging): no other package sets them.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"
)

func main() {
	configureLogging()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// configureLogging sets zerolog's process-wide formats: timestamps to the millisecond, and every
// duration a string with its unit ("109.545416ms"), whoever logs it. The level is set per
// daemon (and changed by a reload) with zerolog.SetGlobalLevel.
func configureLogging() {
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
}

// consoleTimeFormat is the console writer's timestamp: to the millisecond as well.
const consoleTimeFormat = "15:04:05.000"

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		topUsage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] == "help" {
			cmd, ok := cmds[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "pharos-node help: unknown command %q\n", args[1])
				topUsage(stderr)
				return 2
			}
			return cmd.run(ctx, []string{"--help"}, stdout, stderr)
		}
		topUsage(stdout)
		return 0
	case "--version", "-version":
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pharos-node: unknown command %q\n", args[0])
		topUsage(stderr)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}
