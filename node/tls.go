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
	"strings"
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

// TLSFileError is a TLS file TLSConfig cannot use: which TLSFiles field, which file, why. A
// key that does not match its certificate is a KeyFile error naming the CertFile too.
type TLSFileError struct {
	Field string // "CAFile", "CertFile" or "KeyFile"
	Path  string
	Err   error
}

func (e *TLSFileError) Error() string {
	return fmt.Sprintf("node: TLS %s %s: %v", e.Field, e.Path, e.Err)
}

func (e *TLSFileError) Unwrap() error { return e.Err }

// TLSConfig builds the client (server false) or server configuration from files. Errors about a
// file are *TLSFileError.
func TLSConfig(f TLSFiles, server bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify}
	var pool *x509.CertPool
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, &TLSFileError{Field: "CAFile", Path: f.CAFile, Err: err}
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &TLSFileError{Field: "CAFile", Path: f.CAFile, Err: errors.New("holds no PEM certificate")}
		}
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("node: TLS CertFile and KeyFile go together: set both or neither")
	}
	if f.CertFile != "" {
		cert, err := loadKeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if server {
		if len(cfg.Certificates) == 0 {
			return nil, errors.New("node: a TLS server needs a certificate and key (CertFile, KeyFile)")
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

// loadKeyPair is tls.LoadX509KeyPair with errors that name the file at fault.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, &TLSFileError{Field: "CertFile", Path: certFile, Err: err}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, &TLSFileError{Field: "KeyFile", Path: keyFile, Err: err}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	switch {
	case err == nil:
		return cert, nil
	case strings.Contains(err.Error(), "does not match"):
		return tls.Certificate{}, &TLSFileError{Field: "KeyFile", Path: keyFile,
			Err: fmt.Errorf("does not match the certificate in CertFile %s: %w", certFile, err)}
	case strings.Contains(err.Error(), "key input") || strings.Contains(err.Error(), "private key"):
		return tls.Certificate{}, &TLSFileError{Field: "KeyFile", Path: keyFile, Err: err}
	}
	return tls.Certificate{}, &TLSFileError{Field: "CertFile", Path: certFile, Err: err}
}
