package main

// pharos-node ping: connect to the Brain as a hidden node, check that its registered process
// exists, print the round trip. Also holds the distribution flags ping and send share.

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/node"
)

// distFlags are the flags of every command that talks to a Brain: the settings run takes from
// its configuration, spelled as their keys (--brain.node), plus a timeout and -v.
type distFlags struct {
	cfg     config.Config
	timeout time.Duration
	verbose bool
}

// distKeys are the settings ping and send take as flags.
func distKeys() []string {
	return []string{"brain.node", "brain.name", "brain.addr", "node.name", "node.cookie_file", "node.epmd_port",
		"node.net_ticktime", "tls.enabled", "tls.ca_file", "tls.cert_file", "tls.key_file", "tls.insecure_skip_verify",
		"tls.server_name"}
}

// distAliases are the spellings ping and send had before they took the keys' names; kept, hidden
// from help, for one release.
func distAliases() map[string]string {
	return map[string]string{"brain-node": "brain.node", "brain-name": "brain.name", "brain-addr": "brain.addr",
		"name": "node.name", "cookie-file": "node.cookie_file", "epmd-port": "node.epmd_port", "tick-time": "node.net_ticktime",
		"tls": "tls.enabled", "tls-ca": "tls.ca_file", "tls-cert": "tls.cert_file", "tls-key": "tls.key_file",
		"tls-insecure-skip-verify": "tls.insecure_skip_verify", "tls-server-name": "tls.server_name"}
}

func (d *distFlags) register(fs *flag.FlagSet) {
	d.cfg = config.Default()
	if err := config.Bind(fs, &d.cfg, distKeys(), distAliases()); err != nil {
		panic(err) // the keys above are constants of this file
	}
	fs.DurationVar(&d.timeout, "timeout", 10*time.Second, "bound on connecting and on the final round trip (`DURATION`; in acked mode on the whole run)")
	fs.BoolVar(&d.verbose, "v", false, "log the node's connection events to stderr")
}

// cookie reads the cookie: $PHAROS_COOKIE, else node.cookie_file, else ~/.erlang.cookie
// (config.CookieFromEnv, as run). A cookie file others can read is refused, as erl refuses it.
// The cookie is never printed.
func (d *distFlags) cookie(getenv func(string) string) (string, error) {
	return config.CookieFromEnv(getenv, d.cfg.Node.CookieFile, os.Stat, os.ReadFile)
}

func (d *distFlags) tlsConfig() (*tls.Config, error) {
	t := d.cfg.TLS
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" {
			return nil, fmt.Errorf("%w: --tls.ca_file, --tls.cert_file and --tls.key_file need --tls.enabled", errUsage)
		}
		return nil, nil
	}
	return node.TLSConfig(node.TLSFiles{
		CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile,
		ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify,
	}, false)
}

// session is a started node connected to the Brain.
type session struct {
	node   *node.Node
	conn   *node.Conn
	brain  gen.Atom
	target gen.Atom
}

// close stops the node gracefully: its processes end on a shutdown exit and Stop waits for
// them. StopForce kills them and returns at once, and each then logged "process terminated
// abnormally - kill" as an error, after the command had succeeded.
func (s *session) close() { s.node.Stop() }

func (d *distFlags) validate() error {
	if d.cfg.Brain.Node == "" || d.cfg.Brain.Name == "" {
		return fmt.Errorf("%w: --brain.node and --brain.name are required", errUsage)
	}
	if _, _, err := node.SplitNodeName(d.cfg.Brain.Node); err != nil {
		return fmt.Errorf("%w: --brain.node: %v", errUsage, err)
	}
	return nil
}

// connect starts the local node and connects it to the Brain.
func (d *distFlags) connect(ctx context.Context, stderr io.Writer) (*session, error) {
	name, opts, err := d.nodeConfig(stderr)
	if err != nil {
		return nil, err
	}
	brain := gen.Atom(d.cfg.Brain.Node)
	n, err := node.Start(name, opts)
	if err != nil {
		return nil, fmt.Errorf("starting node %s: %w", name, err)
	}
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, err := n.Connect(cctx, brain)
	if err != nil {
		n.Stop()
		return nil, err
	}
	return &session{node: n, conn: c, brain: brain, target: gen.Atom(d.cfg.Brain.Name)}, nil
}

// nodeConfig is this node's name and options from the flags: cookie, TLS, EPMD, tick time, a
// static route with --brain-addr, Ergo's log to stderr.
func (d *distFlags) nodeConfig(stderr io.Writer) (gen.Atom, node.Options, error) {
	cookie, err := d.cookie(os.Getenv)
	if err != nil {
		return "", node.Options{}, err
	}
	tlsCfg, err := d.tlsConfig()
	if err != nil {
		return "", node.Options{}, err
	}
	epmdPort := d.cfg.Node.EpmdPort
	if epmdPort == 0 {
		if epmdPort, err = node.EPMDPortFromEnv(os.Getenv); err != nil {
			return "", node.Options{}, err
		}
	}
	name := d.cfg.Node.Name
	if name == "" {
		host, err := os.Hostname()
		if err != nil {
			return "", node.Options{}, fmt.Errorf("--node.name not given and no host name: %w", err)
		}
		name = "pharos@" + host
	}
	if _, _, err := node.SplitNodeName(name); err != nil {
		return "", node.Options{}, fmt.Errorf("%w: --node.name: %v", errUsage, err)
	}
	brain := gen.Atom(d.cfg.Brain.Node)
	opts := node.Options{
		Cookie:    cookie,
		EPMDPort:  epmdPort,
		TickTime:  d.cfg.Node.NetTick.D(),
		ClientTLS: tlsCfg,
		Log: gen.LogOptions{Level: gen.LogLevelError, DefaultLogger: gen.DefaultLoggerOptions{
			Output: stderr, TimeFormat: "2006-01-02T15:04:05.000Z07:00",
		}},
	}
	if d.verbose {
		opts.Log.Level = gen.LogLevelInfo
	}
	if addr := d.cfg.Brain.Addr; addr != "" {
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			return "", node.Options{}, fmt.Errorf("%w: --brain.addr: %v", errUsage, err)
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil || port == 0 {
			return "", node.Options{}, fmt.Errorf("%w: --brain.addr: bad port %q", errUsage, portText)
		}
		opts.Static = map[gen.Atom]node.StaticRoute{brain: {Host: host, Port: uint16(port)}}
	}
	return gen.Atom(name), opts, nil
}

func runPing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ping")
	var d distFlags
	d.register(fs)
	if code, done := parseFlags("ping", fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "ping", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := d.validate(); err != nil {
		return usageError(stderr, "ping", err)
	}
	s, err := d.connect(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "pharos-node ping: %v\n", err)
		return exitCode(err)
	}
	defer s.close()
	pctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	rtt, err := s.conn.Probe(pctx, s.target)
	if err != nil {
		fmt.Fprintf(stderr, "pharos-node ping: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "pong from %s on %s (hidden node %s): round trip %s\n", string(s.target), string(s.brain), string(s.node.Name()), rtt.Round(time.Microsecond))
	return 0
}
