package node

// The silent-peer rule of a TLS dial against fake peers: a slow TLS peer is waited for, a plain
// one is named after the probe, a silent one at the handshake timeout. The real peers (OTP 25,
// 27, 29 with and without -proto_dist inet_tls) are in interop_tls_test.go.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// selfSigned returns a server certificate for 127.0.0.1 and a client config trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fake-brain"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, &tls.Config{RootCAs: pool}
}

func dialFake(t *testing.T, addr net.Addr, client *tls.Config, timeout, answer time.Duration) (time.Duration, error) {
	h, err := NewHandshake(HandshakeOptions{ClientTLS: client, Timeout: timeout, TLSAnswerTimeout: answer})
	require.NoError(t, err)
	conn, err := net.Dial("tcp", addr.String())
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	tc, _, err := h.dialTLS(conn, "", "pharos_test@127.0.0.1")
	if tc != nil {
		tc.Close()
	}
	return time.Since(start), err
}

// A TLS peer that answers after the answer timeout (a busy Brain) is waited for: the probe
// gets a TLS alert, not a status.
func TestTLSDialWaitsForASlowTLSPeer(t *testing.T) {
	cert, client := selfSigned(t)
	probes := make(chan []byte, 4)
	addr := fakePeer(t, func(c net.Conn) {
		time.Sleep(600 * time.Millisecond)
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if err := tc.Handshake(); err != nil {
			probes <- []byte(err.Error())
			return
		}
		io.Copy(io.Discard, tc)
	})
	took, err := dialFake(t, addr, client, 5*time.Second, 100*time.Millisecond)
	require.NoError(t, err, "a TLS peer slower than TLSAnswerTimeout is not taken for a plain one")
	require.GreaterOrEqual(t, took, 600*time.Millisecond)
	select {
	case e := <-probes:
		t.Logf("the probe was answered as TLS: %s", e)
	case <-time.After(2 * time.Second):
		t.Fatal("no probe reached the peer")
	}
}

// A plain distribution peer reads our ClientHello as the start of a frame and waits; the probe's
// name message gets a status: ErrPeerNotTLS soon after the answer timeout.
func TestTLSDialNamesAPlainPeer(t *testing.T) {
	_, client := selfSigned(t)
	addr := fakePeer(t, func(c net.Conn) {
		b, err := readHandshakeFrame(c, 2, 1<<16)
		if err != nil || len(b) == 0 || b[0] != tagNameV6 {
			io.Copy(io.Discard, c) // the TLS hello, taken for a 5635-byte frame: wait
			return
		}
		writeHandshakeFrame(c, 2, append([]byte{tagStatus}, "ok"...))
		io.Copy(io.Discard, c)
	})
	took, err := dialFake(t, addr, client, 5*time.Second, 100*time.Millisecond)
	require.ErrorIs(t, err, ErrPeerNotTLS)
	require.Contains(t, err.Error(), "a plain name message was answered")
	require.Less(t, took, 2*time.Second, "named after the probe, not at the handshake timeout")
	t.Logf("after %v: %v", took, err)
}

// A peer that answers nothing at all, neither our hello nor the probe, is taken for one without
// TLS distribution when the handshake times out.
func TestTLSDialSilentPeer(t *testing.T) {
	_, client := selfSigned(t)
	addr := fakePeer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	took, err := dialFake(t, addr, client, 700*time.Millisecond, 100*time.Millisecond)
	require.ErrorIs(t, err, ErrPeerNotTLS)
	require.Contains(t, err.Error(), "no answer to our TLS hello in 700ms")
	require.GreaterOrEqual(t, took, 700*time.Millisecond)
	require.Less(t, took, 3*time.Second)
}
