package main

// pharos-node ping: connect to the Brain as a hidden node, check that its registered process
// exists, print the round trip. Also holds the distribution flags ping and send share.

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/node"
)

// distFlags are the flags of every command that talks to a Brain.
type distFlags struct {
	command     string // "ping" or "send": the default node name is pharos_<command>_<pid>@<host>
	brainNode   string
	brainName   string
	name        string
	brainAddr   string
	cookieFile  string
	epmdPort    int
	tickTime    time.Duration
	timeout     time.Duration
	tls         bool
	tlsCA       string
	tlsCert     string
	tlsKey      string
	tlsInsecure bool
	tlsServer   string
	verbose     bool
}

func (d *distFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.brainNode, "brain-node", "", "the Brain's node name, name@host (required)")
	fs.StringVar(&d.brainName, "brain-name", "", "the Brain's registered process name (required)")
	fs.StringVar(&d.name, "name", "", "this node's name (default pharos_"+d.command+"_<pid>@<host>, never a daemon's)")
	fs.StringVar(&d.brainAddr, "brain-addr", "", "the Brain's distribution address host:port; skips EPMD")
	fs.StringVar(&d.cookieFile, "cookie-file", "", "file holding the cookie, when PHAROS_COOKIE is unset (default ~/.erlang.cookie)")
	fs.IntVar(&d.epmdPort, "epmd-port", 0, "EPMD port (default $ERL_EPMD_PORT or 4369)")
	fs.DurationVar(&d.tickTime, "tick-time", 60*time.Second, "the cluster's net_ticktime")
	fs.DurationVar(&d.timeout, "timeout", 10*time.Second, "bound on connecting and on the final round trip")
	fs.BoolVar(&d.tls, "tls", false, "distribution over TLS (the Brain runs -proto_dist inet_tls)")
	fs.StringVar(&d.tlsCA, "tls-ca", "", "PEM file of the CA that signs the Brain's certificate")
	fs.StringVar(&d.tlsCert, "tls-cert", "", "PEM certificate of this node (when the Brain verifies peers)")
	fs.StringVar(&d.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&d.tlsInsecure, "tls-insecure-skip-verify", false, "do not verify the Brain's certificate (testing only)")
	fs.StringVar(&d.tlsServer, "tls-server-name", "", "name expected in the Brain's certificate (default: its host)")
	fs.BoolVar(&d.verbose, "v", false, "log the node's connection events to stderr")
}

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// cookieSource reads the cookie: $PHAROS_COOKIE, else --cookie-file, else ~/.erlang.cookie. A
// cookie file others can read is refused, as erl refuses it. The cookie is never printed.
func (d *distFlags) cookie(getenv func(string) string) (string, error) {
	if c := strings.TrimSpace(getenv("PHAROS_COOKIE")); c != "" {
		return c, nil
	}
	path := d.cookieFile
	if path == "" {
		home := getenv("HOME")
		if home == "" {
			var err error
			if home, err = os.UserHomeDir(); err != nil {
				return "", fmt.Errorf("no PHAROS_COOKIE, no --cookie-file and no home directory: %w", err)
			}
		}
		path = filepath.Join(home, ".erlang.cookie")
	}
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cookie file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("cookie file %s has mode %o: it must be accessible by its owner only (chmod 400)", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cookie file: %w", err)
	}
	c := strings.TrimSpace(string(b))
	if c == "" {
		return "", fmt.Errorf("cookie file %s is empty", path)
	}
	return c, nil
}

func (d *distFlags) tlsConfig() (*tls.Config, error) {
	if !d.tls {
		if d.tlsCA != "" || d.tlsCert != "" || d.tlsKey != "" {
			return nil, fmt.Errorf("%w: --tls-ca, --tls-cert and --tls-key need --tls", errUsage)
		}
		return nil, nil
	}
	return node.TLSConfig(node.TLSFiles{
		CAFile: d.tlsCA, CertFile: d.tlsCert, KeyFile: d.tlsKey,
		ServerName: d.tlsServer, InsecureSkipVerify: d.tlsInsecure,
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
	if d.brainNode == "" || d.brainName == "" {
		return fmt.Errorf("%w: --brain-node and --brain-name are required", errUsage)
	}
	if _, _, err := node.SplitNodeName(d.brainNode); err != nil {
		return fmt.Errorf("%w: --brain-node: %v", errUsage, err)
	}
	return nil
}

// connect starts the local node and connects it to the Brain.
func (d *distFlags) connect(ctx context.Context, stderr io.Writer) (*session, error) {
	name, opts, err := d.nodeConfig(stderr)
	if err != nil {
		return nil, err
	}
	brain := gen.Atom(d.brainNode)
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
	return &session{node: n, conn: c, brain: brain, target: gen.Atom(d.brainName)}, nil
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
	epmdPort := d.epmdPort
	if epmdPort == 0 {
		if epmdPort, err = node.EPMDPortFromEnv(os.Getenv); err != nil {
			return "", node.Options{}, err
		}
	}
	name := d.name
	if name == "" {
		host, err := os.Hostname()
		if err != nil {
			return "", node.Options{}, fmt.Errorf("--name not given and no host name: %w", err)
		}
		// a daemon is pharos@<host>: a one-shot command must not take its name
		name = fmt.Sprintf("pharos_%s_%d@%s", d.command, os.Getpid(), host)
	}
	if _, _, err := node.SplitNodeName(name); err != nil {
		return "", node.Options{}, fmt.Errorf("%w: --name: %v", errUsage, err)
	}
	brain := gen.Atom(d.brainNode)
	opts := node.Options{
		Cookie:    cookie,
		EPMDPort:  epmdPort,
		TickTime:  d.tickTime,
		ClientTLS: tlsCfg,
		Log: gen.LogOptions{Level: gen.LogLevelError, DefaultLogger: gen.DefaultLoggerOptions{
			Output: stderr, TimeFormat: time.RFC3339,
		}},
	}
	if d.verbose {
		opts.Log.Level = gen.LogLevelInfo
	}
	if d.brainAddr != "" {
		host, portText, err := net.SplitHostPort(d.brainAddr)
		if err != nil {
			return "", node.Options{}, fmt.Errorf("%w: --brain-addr: %v", errUsage, err)
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil || port == 0 {
			return "", node.Options{}, fmt.Errorf("%w: --brain-addr: bad port %q", errUsage, portText)
		}
		opts.Static = map[gen.Atom]node.StaticRoute{brain: {Host: host, Port: uint16(port)}}
	}
	return gen.Atom(name), opts, nil
}

// exitCode maps an error to the command's exit code: 2 for usage, 1 otherwise.
func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func runPing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := distFlags{command: "ping"}
	d.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := d.validate(); err != nil {
		fmt.Fprintf(stderr, "pharos-node ping: %v\n", err)
		return 2
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
