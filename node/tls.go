package node

// TLS distribution. An Erlang node started with -proto_dist inet_tls runs the whole
// distribution inside TLS: the TLS handshake first, then the distribution handshake with 4-byte
// frame lengths, then the connection. Handshake does the same when HandshakeOptions.ClientTLS
// (dialling) or ServerTLS (accepting) is set; TLSConfig builds those from PEM files.
//
// Certificates: Go checks the peer's host against the certificate's SANs (an IP host against
// IP SANs). Erlang's ssl client checks the host part of our node name as a DNS name, so a
// listening node named pharos@127.0.0.1 needs "DNS:127.0.0.1" in its SANs besides
// "IP:127.0.0.1" (measured with OTP 25).

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles name the PEM files of a TLS setup.
type TLSFiles struct {
	CAFile   string // CA that signs the peer's certificate; "" means the system pool
	CertFile string // this node's certificate (a server always needs one; a client when the peer verifies)
	KeyFile  string // the key of CertFile
	// ServerName is the name expected in the peer's certificate; "" means the peer's host.
	ServerName string
	// InsecureSkipVerify turns peer verification off (testing only). Verification is on by
	// default: a server then requires and verifies client certificates signed by CAFile.
	InsecureSkipVerify bool
}

// TLSConfig builds the client (server false) or server configuration from files.
func TLSConfig(f TLSFiles, server bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify}
	var pool *x509.CertPool
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("node: TLS CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("node: TLS CA %s holds no PEM certificate", f.CAFile)
		}
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("node: TLS certificate and key go together")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("node: TLS certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if server {
		if len(cfg.Certificates) == 0 {
			return nil, errors.New("node: a TLS server needs a certificate and key")
		}
		cfg.ClientCAs = pool
		if !f.InsecureSkipVerify {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return cfg, nil
	}
	cfg.RootCAs = pool
	return cfg, nil
}
