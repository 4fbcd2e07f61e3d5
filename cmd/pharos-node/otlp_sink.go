package main

// The OTLP transport (brain.transport otlp): the agent delivers to an OTLP/HTTP receiver through
// an otlpsink.Sink instead of the Brain; the node, the cookie and tls.* are then not used.

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/otlpsink"
)

// otlpTransport reports whether records go to an OTLP receiver.
func otlpTransport(cfg config.Config) bool { return cfg.Brain.Transport == "otlp" }

// managerConfig is the connection manager's configuration: delivery.*, and with the OTLP
// transport its deadlines from otlp.timeout (a request, a probe).
func managerConfig(cfg config.Config) fsm.Config {
	fcfg := deliveryConfig(cfg.Delivery)
	if otlpTransport(cfg) {
		fcfg.ConnectTimeout, fcfg.DeliverTimeout = cfg.OTLP.Timeout.D(), cfg.OTLP.Timeout.D()
	}
	return fcfg
}

// otlpTLSKeys maps node.TLSFileError's fields to the otlp.tls keys.
var otlpTLSKeys = map[string]string{"CAFile": "otlp.tls.ca_file", "CertFile": "otlp.tls.cert_file", "KeyFile": "otlp.tls.key_file"}

// otlpOptions maps otlp.* onto the sink's options. Errors are *config.KeyError.
func otlpOptions(cfg config.Config, reg prometheus.Registerer, log zerolog.Logger) (otlpsink.Options, error) {
	o := cfg.OTLP
	header, err := otlpsink.ParseHeaders(o.Headers)
	if err != nil {
		return otlpsink.Options{}, &config.KeyError{Key: "otlp.headers", Source: origin(cfg, "otlp.headers"), Reason: err.Error()}
	}
	if o.TokenFile != "" {
		token, err := readToken(o.TokenFile)
		if err != nil {
			return otlpsink.Options{}, &config.KeyError{Key: "otlp.token_file", Source: origin(cfg, "otlp.token_file"), Reason: err.Error()}
		}
		header.Set("Authorization", "Bearer "+token)
	}
	compression, err := otlpsink.ParseCompression(o.Compression)
	if err != nil {
		return otlpsink.Options{}, &config.KeyError{Key: "otlp.compression", Reason: err.Error()}
	}
	temporality, err := otlpsink.ParseTemporality(o.Temporality)
	if err != nil {
		return otlpsink.Options{}, &config.KeyError{Key: "otlp.temporality", Reason: err.Error()}
	}
	opts := otlpsink.Options{Endpoint: o.Endpoint, Header: header, Compression: compression, MaxPoints: o.MaxPointsPerRequest,
		Timeout: o.Timeout.D(), MaxRetryAfter: o.MaxRetryAfter.D(), Temporality: temporality, Registerer: reg, Logger: log}
	if t := o.TLS; t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify {
		tlsCfg, err := node.TLSConfig(node.TLSFiles{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
			InsecureSkipVerify: t.InsecureSkipVerify}, false)
		if err != nil {
			key := "otlp.tls.cert_file"
			if fe := (*node.TLSFileError)(nil); errors.As(err, &fe) {
				key = otlpTLSKeys[fe.Field]
			}
			return otlpsink.Options{}, &config.KeyError{Key: key, Source: origin(cfg, key), Reason: err.Error()}
		}
		opts.TLS = tlsCfg
	}
	return opts, nil
}

// origin is where key's value came from, "" for a default.
func origin(cfg config.Config, key string) string {
	if o := cfg.Origin(key); o != "default" {
		return o
	}
	return ""
}

// readToken reads a bearer token file: one token, surrounding white space removed.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the token file: %w", errors.Unwrap(err))
	}
	token := strings.TrimSpace(string(b))
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return "", fmt.Errorf("%s must hold one token on one line", path)
	}
	return token, nil
}

// preflightOTLP checks what the OTLP transport needs from the machine: its TLS files, its token
// file, and its headers as the sink will read them.
func preflightOTLP(cfg config.Config, c *checked) {
	if _, err := otlpOptions(cfg, nil, zerolog.Nop()); err != nil {
		var ke *config.KeyError
		if errors.As(err, &ke) {
			c.errs = append(c.errs, ke)
			return
		}
		c.bad("otlp", "", "%v", err)
	}
}

// otlpAgentOptions are the agent's options with the OTLP transport: the same tiers and manager,
// an otlpsink.Sink in place of the Brain, a node of its own that connects nowhere (the agent
// makes its cookie).
func otlpAgentOptions(cfg config.Config, pf *checked, reg prometheus.Registerer, log zerolog.Logger) (agent.Options, error) {
	sopts, err := otlpOptions(cfg, reg, log)
	if err != nil {
		return agent.Options{}, err
	}
	sink, err := otlpsink.New(sopts)
	if err != nil {
		return agent.Options{}, &config.KeyError{Key: "otlp", Reason: err.Error()}
	}
	opts := agent.Options{
		RestartIntensity: cfg.Delivery.RestartIntensity, RestartPeriod: cfg.Delivery.RestartPeriod.D(),
		NodeName:    pf.nodeName,
		Sink:        sink,
		Mode:        agent.ModePayload,
		Delivery:    managerConfig(cfg),
		RingRecords: cfg.Buffer.MaxRecords,
		RingBytes:   int(cfg.Buffer.MaxBytes),
		SpillDir:    cfg.Spill.Dir,
		Registerer:  reg,
		Logger:      log,
	}
	return withSpill(cfg, opts)
}

// closeSink closes the OTLP sink's idle connections once the agent has stopped.
func closeSink(opts agent.Options) {
	if s, ok := opts.Sink.(*otlpsink.Sink); ok {
		s.Close()
	}
}
