package node

// The TLS handshake of a distribution connection, and errors that say what to do (docs/node.md,
// "TLS"). Mismatches show within a second:
//
//   - we speak TLS to a peer without TLS distribution: it takes our ClientHello for the start
//     of a distribution handshake and waits for more (7 s, then it closes). When the peer has
//     sent nothing back within TLSAnswerTimeout (1 s), a probe asks it on a second connection
//     with a plain name message: a status back proves plain TCP distribution, ErrPeerNotTLS at
//     once. Anything else (a TLS alert, silence: a busy TLS peer) leaves the handshake to run
//     to its timeout; one that ends with no answer at all is ErrPeerNotTLS too.
//   - we speak plain to a peer with TLS distribution (-proto_dist inet_tls): it answers our name
//     message with a TLS alert record (OTP 25: after about 250 ms). The first bytes of a TLS
//     record (22 or 21, then 3) are no plausible handshake frame length: ErrPeerRequiresTLS.
//
// A client certificate the peer requires and we do not send (none configured, or one its
// CertificateRequest's CAs did not sign, which Go then withholds) is named as such.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"ergo.services/ergo/gen"
)

// TLS sentinel errors; each arrives wrapped in a *HandshakeError.
var (
	// ErrPeerNotTLS: we dialled with TLS and the peer did not answer it: it runs plain TCP
	// distribution.
	ErrPeerNotTLS = errors.New("node: the peer does not answer TLS: it does not run TLS distribution (-proto_dist inet_tls); " +
		"connect without TLS (pharos-node: tls.enabled false), or start the peer with -proto_dist inet_tls")
	// ErrPeerRequiresTLS: we dialled plain TCP and the peer answered with TLS: it runs TLS
	// distribution (-proto_dist inet_tls).
	ErrPeerRequiresTLS = errors.New("node: the peer answers in TLS: it runs TLS distribution (-proto_dist inet_tls); " +
		"connect with TLS (Options.ClientTLS; pharos-node: tls.enabled true)")
	// ErrClientCertRequired: the peer refused the TLS handshake and we sent no client
	// certificate: it requires one (fail_if_no_peer_cert).
	ErrClientCertRequired = errors.New("node: the peer requires a client certificate and none was sent: " +
		"set TLSFiles.CertFile and KeyFile (pharos-node: tls.cert_file, tls.key_file) to a certificate signed by a CA the peer trusts")
)

// DefaultTLSAnswerTimeout is how long a TLS dial waits for the peer's first byte before it
// probes whether the peer runs plain TCP distribution.
const DefaultTLSAnswerTimeout = time.Second

// tlsDial is one client TLS handshake and what it learnt.
type tlsDial struct {
	cfg      *tls.Config
	certs    bool  // a client certificate is configured
	withheld error // why our certificate was not sent, if it was not
}

// dialTLS runs the client side of TLS on conn. peer is the node dialled ("" if unknown): its
// host is the default server name; name is ours, for the probe of a silent peer.
func (h *Handshake) dialTLS(conn net.Conn, peer gen.Atom, name string) (*tls.Conn, *tlsDial, error) {
	d := &tlsDial{cfg: h.opts.ClientTLS.Clone()}
	if d.cfg.ServerName == "" {
		d.cfg.ServerName = serverName(peer, conn.RemoteAddr())
	}
	d.certs = len(d.cfg.Certificates) > 0 || d.cfg.GetClientCertificate != nil
	if d.cfg.GetClientCertificate == nil && len(d.cfg.Certificates) > 0 {
		certs := d.cfg.Certificates
		d.cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			for i := range certs {
				if cri.SupportsCertificate(&certs[i]) == nil {
					return &certs[i], nil
				}
			}
			// What Go does with Certificates: send none. Say why.
			d.withheld = withheldError(&certs[0], cri)
			return &tls.Certificate{}, nil
		}
	}
	w := &answerWatch{Conn: conn}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	defer cancel()
	wait := h.opts.TLSAnswerTimeout
	probed := make(chan struct{})
	silent := time.AfterFunc(wait, func() {
		defer close(probed)
		if w.answered.Load() {
			return
		}
		if probePlain(ctx, conn.RemoteAddr(), name, h.opts.Flags) && !w.answered.Load() {
			w.plain.Store(true)
			cancel()
		}
	})
	defer func() {
		if silent.Stop() {
			return // the probe never started
		}
		cancel()
		<-probed // the probe ends with ctx
	}()
	tc := tls.Client(w, d.cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		switch {
		case w.plain.Load():
			err = fmt.Errorf("%w (no answer to our TLS hello in %s; a plain name message was answered)", ErrPeerNotTLS, wait)
		case !w.answered.Load() && (isClosed(err) || errors.Is(err, context.DeadlineExceeded)):
			err = fmt.Errorf("%w (no answer to our TLS hello in %s)", ErrPeerNotTLS, h.opts.Timeout)
		}
		return nil, nil, &HandshakeError{Peer: peerLabel(peer, conn), Phase: PhaseTLS, Err: d.explain(err)}
	}
	return tc, d, nil
}

// probePlain dials addr in plain TCP and sends a distribution name message for name: true when
// the answer is a status, which only a peer running plain TCP distribution sends (one running
// TLS distribution answers with a TLS alert). The probe's handshake goes no further: the peer
// drops it when we close.
func probePlain(ctx context.Context, addr net.Addr, name string, flags Flags) bool {
	var d net.Dialer
	c, err := d.DialContext(ctx, addr.Network(), addr.String())
	if err != nil {
		return false
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	msg := make([]byte, 0, 15+len(name))
	msg = append(msg, tagNameV6)
	msg = binary.BigEndian.AppendUint64(msg, uint64(flags))
	msg = binary.BigEndian.AppendUint32(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(name)))
	msg = append(msg, name...)
	if err := writeHandshakeFrame(c, 2, msg); err != nil {
		return false
	}
	b, err := readHandshakeFrame(c, 2, 1<<8)
	return err == nil && len(b) > 0 && b[0] == tagStatus
}

// explain adds to an error of a TLS connection what it most likely means.
func (d *tlsDial) explain(err error) error {
	if d == nil || errors.Is(err, ErrPeerNotTLS) {
		return err
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch alert := remoteAlert(err); {
	case alert != "" && !d.certs && isCertAlert(alert):
		return fmt.Errorf("%w (%w)", ErrClientCertRequired, err)
	case alert != "" && d.withheld != nil:
		return fmt.Errorf("%w: %w", err, d.withheld)
	case alert != "" && isCertAlert(alert):
		return fmt.Errorf("%w: the peer refused our client certificate (is it signed by a CA in the peer's cacertfile?)", err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w: the peer's certificate is not signed by a CA of TLSFiles.CAFile (pharos-node: tls.ca_file)", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("%w: the peer's certificate is not valid for %q, the server name (default: the host of its node name; TLSFiles.ServerName, pharos-node: tls.server_name)", err, d.cfg.ServerName)
	}
	return err
}

// serverName is the name expected in the peer's certificate by default: the host of its node
// name (brain@localhost: localhost), as Erlang's ssl client does, else the address dialled.
func serverName(peer gen.Atom, remote net.Addr) string {
	if _, host, err := SplitNodeName(string(peer)); err == nil {
		return host
	}
	host, _, _ := net.SplitHostPort(remote.String())
	return host
}

func peerLabel(peer gen.Atom, conn net.Conn) string {
	if peer != "" {
		return string(peer)
	}
	return conn.RemoteAddr().String()
}

// withheldError says why our certificate did not suit the peer's CertificateRequest.
func withheldError(cert *tls.Certificate, cri *tls.CertificateRequestInfo) error {
	subject, issuer := "?", "?"
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
		subject, issuer = leaf.Subject.String(), leaf.Issuer.String()
	}
	var cas []string
	for _, raw := range cri.AcceptableCAs {
		var rdn pkix.RDNSequence
		if _, err := asn1.Unmarshal(raw, &rdn); err != nil {
			continue
		}
		var name pkix.Name
		name.FillFromRDNSequence(&rdn)
		cas = append(cas, name.String())
	}
	return fmt.Errorf("node: our client certificate (%s, issued by %s) was not sent: the peer accepts certificates signed by %s only",
		subject, issuer, strings.Join(cas, "; "))
}

// answerWatch records whether the peer sent anything.
type answerWatch struct {
	net.Conn
	answered atomic.Bool // the peer sent a byte
	plain    atomic.Bool // the probe found plain TCP distribution
}

func (w *answerWatch) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	if n > 0 {
		w.answered.Store(true)
	}
	return n, err
}

// remoteAlert returns the text of a TLS alert the peer sent ("tls: handshake failure"), or "".
func remoteAlert(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		return op.Err.Error()
	}
	return ""
}

// isCertAlert reports whether a peer's alert is how OTP refuses a missing or bad client
// certificate: handshake_failure (OTP 25, 27, TLS 1.2), certificate_required (TLS 1.3),
// bad_certificate, unknown_ca.
func isCertAlert(alert string) bool {
	for _, a := range []string{"handshake failure", "certificate required", "bad certificate", "unknown certificate authority"} {
		if strings.Contains(alert, a) {
			return true
		}
	}
	return false
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
