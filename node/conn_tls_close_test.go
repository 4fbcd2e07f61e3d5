package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// selfSignedCert is a throwaway certificate for a TLS pair in memory.
func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pharos-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsPair is a Conn over TLS in memory (net.Pipe: a write waits until the peer reads) and the
// peer's end, after both handshakes.
func tlsPair(t *testing.T, highWater int) (*Conn, *tls.Conn, chan error) {
	t.Helper()
	rawOurs, rawPeers := net.Pipe()
	t.Cleanup(func() { rawPeers.Close() })
	peer := tls.Server(rawPeers, &tls.Config{Certificates: []tls.Certificate{selfSignedCert(t)}})
	ours := tls.Client(rawOurs, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test pair in memory
	handshake := make(chan error, 1)
	go func() { handshake <- peer.Handshake() }()
	require.NoError(t, ours.Handshake())
	require.NoError(t, <-handshake)
	co := NewProto(ProtoOptions{TickTime: 10 * time.Second}).opts
	if highWater > 0 {
		co.highWater = highWater
	}
	c := newConn(newFakeCore(), testLog{t: t}, ours, peerInfo{name: "brain@h", flags: DefaultFlags, creation: 3}, co)
	c.rawNet = rawOurs
	served := make(chan error, 1)
	go func() { served <- c.serve() }()
	return c, peer, served
}

// terminateWithin ends c and fails unless serve returns within max.
func terminateWithin(t *testing.T, c *Conn, served chan error, max time.Duration) {
	t.Helper()
	start := time.Now()
	c.Terminate(errors.New("test: giving up on the peer"))
	select {
	case <-served:
	case <-time.After(8 * time.Second):
		t.Fatal("serve did not return")
	}
	require.Less(t, time.Since(start), max, "ending the connection waited for the peer")
}

// A TLS peer that stopped reading: ending the connection must not wait for the close_notify that
// closing a tls.Conn sends, which crypto/tls lets wait up to 5 s for room in the socket.
func TestConnTLSEndsAtOnceWhenThePeerStoppedReading(t *testing.T) {
	t.Run("writer blocked on the socket", func(t *testing.T) {
		c, _, served := tlsPair(t, 64)
		fillUntilFull(t, c) // the writer is blocked on the socket
		terminateWithin(t, c, served, time.Second)
	})
	t.Run("writer idle", func(t *testing.T) { // only the close_notify would wait
		c, _, served := tlsPair(t, 0)
		terminateWithin(t, c, served, tlsCloseWait+time.Second)
	})
}

// A peer that reads still gets the close_notify: after the handshake, the one record that
// reaches it before the socket closes (the Conn writes nothing else here: no tick in time).
func TestConnTLSCloseNotifiesAReadingPeer(t *testing.T) {
	c, peer, served := tlsPair(t, 0)
	read := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, peer.NetConn()) // the raw bytes: a bare close sends none
		read <- n
	}()
	time.Sleep(50 * time.Millisecond) // the peer waits in its read
	terminateWithin(t, c, served, time.Second)
	select {
	case n := <-read:
		require.Positive(t, n, "the peer saw the connection end without a close_notify")
	case <-time.After(2 * time.Second):
		t.Fatal("the peer's read did not end")
	}
}
