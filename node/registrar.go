package node

// Registrar is a gen.Registrar and gen.Resolver over EPMD and static routes.
//
// Resolve looks a node up in the static routes first (a Brain at a known host:port, for
// clusters run with -erl_epmd_port or a fixed inet_dist_listen_min/max), then asks the EPMD on
// the node's host with PORT_PLEASE2. Register registers the node with the local EPMD (ALIVE2):
// with its listening port when Ergo hands it a listening route and Register is set; else, with
// Claim, with port 0, only to hold the name (docs/node.md, "Names"): EPMD refuses a second node of
// that name on this host, erl included, while this one runs, and a peer that looks the node up
// learns port 0 and cannot connect. Features of Ergo's own registrar with no EPMD counterpart
// (proxies, application routes, config, events) return ErrNoErlangEquivalent.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"
	"time"

	"ergo.services/ergo/gen"
)

// StaticRoute is a known address for a node, used instead of EPMD.
type StaticRoute struct {
	Host string
	Port uint16
}

// RegistrarOptions configure a Registrar.
type RegistrarOptions struct {
	// EPMD is the client used to resolve and register; EPMD.Port 0 means DefaultEPMDPort
	// (callers that honour ERL_EPMD_PORT read it with EPMDPortFromEnv).
	EPMD EPMDClient
	// Static maps node names to addresses that skip EPMD.
	Static map[gen.Atom]StaticRoute
	// Register switches ALIVE2 registration on for a listening node: its listening port.
	Register bool
	// Claim registers the name with port 0 when the node does not register a listening port,
	// so that no other node on this host can take it. When no EPMD answers, the node stays
	// unregistered (Registered reports false) unless ClaimRequired is set.
	Claim         bool
	ClaimRequired bool
	// RegisterHost is where the local EPMD runs; "" means 127.0.0.1.
	RegisterHost string
	// Timeout bounds each EPMD request; 0 means 5 s.
	Timeout time.Duration
}

// Registrar resolves Erlang nodes and, if asked, registers this one. Safe for concurrent use.
type Registrar struct {
	opts RegistrarOptions

	mu           sync.Mutex
	attempted    bool // register ran: Ergo's Register call does not repeat Start's
	registration *EPMDRegistration
	unclaimed    error // why the name is not claimed, when no EPMD answered
	registerErr  error // the last Register failure, kept because Ergo flattens it to text
	// dialled maps the host:port of each route handed out to its node: Ergo dials a route
	// without naming the node, and TLS wants the node's host as the server name.
	dialled map[string]gen.Atom
}

// maxDialled bounds Registrar.dialled (one entry per peer resolved).
const maxDialled = 1024

var (
	_ gen.Registrar = (*Registrar)(nil)
	_ gen.Resolver  = (*Registrar)(nil)
)

// NewRegistrar returns a Registrar.
func NewRegistrar(opts RegistrarOptions) *Registrar {
	if opts.RegisterHost == "" {
		opts.RegisterHost = "127.0.0.1"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	static := make(map[gen.Atom]StaticRoute, len(opts.Static))
	for k, v := range opts.Static {
		static[k] = v
	}
	opts.Static = static
	r := &Registrar{opts: opts, dialled: make(map[string]gen.Atom)}
	for name, sr := range static {
		r.remember(name, sr.Host, sr.Port)
	}
	return r
}

// remember records that host:port is node's.
func (r *Registrar) remember(node gen.Atom, host string, port uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.dialled) >= maxDialled {
		clear(r.dialled)
		for name, sr := range r.opts.Static {
			r.dialled[net.JoinHostPort(sr.Host, strconv.Itoa(int(sr.Port)))] = name
		}
	}
	r.dialled[net.JoinHostPort(host, strconv.Itoa(int(port)))] = node
}

// nodeAt names the node whose route led to the address remote (a dialled socket's peer), or
// returns "" when no route handed out matches it.
func (r *Registrar) nodeAt(remote net.Addr) gen.Atom {
	tcp, ok := remote.(*net.TCPAddr)
	if !ok {
		return ""
	}
	type candidate struct {
		host string
		node gen.Atom
	}
	var byName []candidate
	r.mu.Lock()
	for hostPort, node := range r.dialled {
		host, port, _ := net.SplitHostPort(hostPort)
		if port != strconv.Itoa(tcp.Port) {
			continue
		}
		if ip := net.ParseIP(host); ip != nil {
			if ip.Equal(tcp.IP) {
				r.mu.Unlock()
				return node
			}
			continue
		}
		byName = append(byName, candidate{host, node})
	}
	r.mu.Unlock()
	if len(byName) == 1 {
		return byName[0].node
	}
	for _, c := range byName {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, c.host)
		cancel()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.Equal(tcp.IP) {
				return c.node
			}
		}
	}
	return ""
}

// Register is called by Ergo when its network starts. With a listening route and Register set,
// the node is registered with EPMD at that port; else, with Claim, at port 0. A taken name gives
// a *NameInUseError (errors.Is ErrNameInUse). It returns the static routes for Ergo's route
// table.
func (r *Registrar) Register(node gen.NodeRegistrar, routes gen.RegisterRoutes) (gen.StaticRoutes, error) {
	static := gen.StaticRoutes{Routes: make(map[string]gen.NetworkRoute)}
	for name, sr := range r.opts.Static {
		static.Routes["^"+regexp.QuoteMeta(string(name))+"$"] = gen.NetworkRoute{Route: r.route(sr.Host, sr.Port)}
	}
	listening := r.opts.Register && len(routes.Routes) > 0
	r.mu.Lock()
	attempted := r.attempted
	r.mu.Unlock()
	if !listening && !r.opts.Claim || attempted {
		return static, nil
	}
	var port uint16
	if listening {
		port = routes.Routes[0].Port
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	if err := r.register(ctx, node.Name(), port, listening || r.opts.ClaimRequired); err != nil {
		r.mu.Lock()
		r.registerErr = err
		r.mu.Unlock()
		return static, err
	}
	return static, nil
}

// NameInUseError: the local EPMD refused the node's name, held by another node on this host
// (an erl, or another Pharos node).
type NameInUseError struct {
	Name gen.Atom
	Err  error // the *EPMDError, wrapping ErrNameInUse
}

func (e *NameInUseError) Error() string {
	return fmt.Sprintf("node: name %s in use: another node on this host holds it (%v)", e.Name, e.Err)
}

func (e *NameInUseError) Unwrap() error { return e.Err }

// register registers name at port with the local EPMD. Without required, an EPMD that does not
// answer leaves the node unregistered without an error.
func (r *Registrar) register(ctx context.Context, name gen.Atom, port uint16, required bool) error {
	alive, _, err := SplitNodeName(string(name))
	if err != nil {
		return err
	}
	reg, err := r.opts.EPMD.Register(ctx, r.opts.RegisterHost, alive, port, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempted = true
	switch {
	case errors.Is(err, ErrNameInUse):
		return &NameInUseError{Name: name, Err: err}
	case errors.Is(err, ErrEPMDUnreachable) && !required:
		r.unclaimed = err
		return nil
	case err != nil:
		return err
	}
	r.registration = reg
	return nil
}

// Unclaimed returns why the node does not hold its name in the local EPMD when it tried and no
// EPMD answered (nil otherwise).
func (r *Registrar) Unclaimed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unclaimed
}

// Registered reports whether the node holds its name in the local EPMD.
func (r *Registrar) Registered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.registration != nil
}

func (r *Registrar) route(host string, port uint16) gen.Route {
	return gen.Route{Host: host, Port: port, HandshakeVersion: protocolVersion, ProtoVersion: protocolVersion}
}

// RegisterError returns the error of the last failed Register, or nil.
func (r *Registrar) RegisterError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.registerErr
}

// Resolver returns the Registrar itself.
func (r *Registrar) Resolver() gen.Resolver { return r }

// Resolve returns the route to node: its static route, else what its host's EPMD says. Errors
// wrap ErrEPMDUnreachable or ErrNodeNotRegistered.
func (r *Registrar) Resolve(node gen.Atom) ([]gen.Route, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	route, err := r.ResolveContext(ctx, node)
	if err != nil {
		return nil, err
	}
	return []gen.Route{route}, nil
}

// ResolveContext is Resolve with a context.
func (r *Registrar) ResolveContext(ctx context.Context, node gen.Atom) (gen.Route, error) {
	if sr, ok := r.opts.Static[node]; ok {
		return r.route(sr.Host, sr.Port), nil
	}
	alive, host, err := SplitNodeName(string(node))
	if err != nil {
		return gen.Route{}, err
	}
	entry, err := r.opts.EPMD.PortPlease(ctx, host, alive)
	if err != nil {
		return gen.Route{}, err
	}
	r.remember(node, host, entry.Port)
	return r.route(host, entry.Port), nil
}

// Addr returns the host:port the node resolves to.
func (r *Registrar) Addr(ctx context.Context, node gen.Atom) (string, error) {
	route, err := r.ResolveContext(ctx, node)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(route.Host, strconv.Itoa(int(route.Port))), nil
}

// ResolveProxy: EPMD knows no proxies.
func (r *Registrar) ResolveProxy(gen.Atom) ([]gen.ProxyRoute, error) {
	return nil, ErrNoErlangEquivalent
}

// ResolveApplication: EPMD knows no applications.
func (r *Registrar) ResolveApplication(gen.Atom) ([]gen.ApplicationRoute, error) {
	return nil, ErrNoErlangEquivalent
}

// RegisterProxy is not supported by EPMD.
func (r *Registrar) RegisterProxy(gen.Atom) error { return ErrNoErlangEquivalent }

// UnregisterProxy is not supported by EPMD.
func (r *Registrar) UnregisterProxy(gen.Atom) error { return ErrNoErlangEquivalent }

// RegisterApplicationRoute is not supported by EPMD.
func (r *Registrar) RegisterApplicationRoute(gen.ApplicationRoute) error {
	return ErrNoErlangEquivalent
}

// UnregisterApplicationRoute is not supported by EPMD.
func (r *Registrar) UnregisterApplicationRoute(gen.Atom) error { return ErrNoErlangEquivalent }

// Nodes is not offered (EPMD's NAMES lists one host only).
func (r *Registrar) Nodes() ([]gen.Atom, error) { return nil, ErrNoErlangEquivalent }

// Config: EPMD holds no configuration.
func (r *Registrar) Config(...string) (map[string]any, error) { return nil, ErrNoErlangEquivalent }

// ConfigItem: EPMD holds no configuration.
func (r *Registrar) ConfigItem(string) (any, error) { return nil, ErrNoErlangEquivalent }

// Event: EPMD has no events.
func (r *Registrar) Event() (gen.Event, error) { return gen.Event{}, ErrNoErlangEquivalent }

// Info describes the registrar.
func (r *Registrar) Info() gen.RegistrarInfo {
	port := r.opts.EPMD.Port
	if port == 0 {
		port = DefaultEPMDPort
	}
	return gen.RegistrarInfo{
		Server:  fmt.Sprintf("epmd:%d", port),
		Version: r.Version(),
	}
}

// Terminate ends the EPMD registration, if any.
func (r *Registrar) Terminate() {
	r.mu.Lock()
	reg := r.registration
	r.registration = nil
	r.mu.Unlock()
	if reg != nil {
		reg.Close()
	}
}

// Version names the registrar.
func (r *Registrar) Version() gen.Version {
	return gen.Version{Name: "epmd", Release: "2", License: gen.LicenseMIT}
}
