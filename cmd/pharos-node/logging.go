package main

// The daemon's logger: JSON lines (or the console format on a terminal), timestamps to the
// millisecond, durations with their unit (configureLogging, main), the level and format
// changeable by a reload.

import (
	"io"
	"os"
	"sync"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/internal/config"
)

// logOutput is the daemon's log writer; a reload may switch it between JSON and the console
// format. Every logger the daemon hands out writes through it.
type logOutput struct {
	mu   sync.Mutex
	base io.Writer // stderr
	w    io.Writer // base, or a console writer on it
}

func newLogOutput(base io.Writer, format string) *logOutput {
	o := &logOutput{base: base}
	o.setFormat(format)
	return o
}

func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

// setFormat selects json, console or auto (console on a terminal).
func (o *logOutput) setFormat(format string) {
	console := format == "console"
	if format == "auto" {
		if f, ok := o.base.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	w := o.base
	if console {
		w = zerolog.ConsoleWriter{Out: o.base, TimeFormat: consoleTimeFormat}
	}
	o.mu.Lock()
	o.w = w
	o.mu.Unlock()
}

// newLogger builds the daemon's logger on out. Its own level is debug (the lowest log.level
// takes); log.level is applied process-wide by setLogLevel, so that a reload changes it for
// every component at once.
func newLogger(out *logOutput) zerolog.Logger {
	return zerolog.New(out).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// setLogLevel applies log.level (config.Validate has checked it).
func setLogLevel(level string) {
	l, err := zerolog.ParseLevel(level)
	if err != nil {
		l = zerolog.InfoLevel
	}
	zerolog.SetGlobalLevel(l)
}

// logConfigErrors logs each configuration problem as its own line, naming the key: the same
// format as every other start error.
func logConfigErrors(log zerolog.Logger, msg string, err error) {
	kes := config.KeyErrors(err)
	if len(kes) == 0 {
		log.Error().Err(err).Msg(msg)
		return
	}
	for _, ke := range kes {
		ev := log.Error().Str("key", ke.Key)
		if ke.Source != "" {
			ev = ev.Str("source", ke.Source)
		}
		ev.Str("error", ke.Reason).Msg(msg)
	}
}

// logWarnings logs the settings that do nothing.
func logWarnings(log zerolog.Logger, ws []config.Warning) {
	for _, w := range ws {
		log.Warn().Str("key", w.Key).Msg(w.Message)
	}
}
