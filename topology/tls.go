package topology

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// TLSMode says how connections to a cluster's servers are protected: myha's
// own and, from the next repoint on, the replicas' connections to their source.
type TLSMode string

// The TLS modes, from none to full authentication of the server.
const (
	// TLSDisabled connects in plain text.
	TLSDisabled TLSMode = "disabled"
	// TLSPreferred uses TLS when the server offers it, without checking
	// who the server is: it stops an eavesdropper, not a man in the middle.
	TLSPreferred TLSMode = "preferred"
	// TLSRequired insists on TLS and on a certificate chain that verifies
	// against ca_file (or the system's roots); the host name is not checked.
	TLSRequired TLSMode = "required"
	// TLSVerifyCA insists on TLS and a chain that verifies against ca_file.
	TLSVerifyCA TLSMode = "verify-ca"
	// TLSVerifyFull is TLSRequired plus the certificate naming the host
	// myha connects to (DNS name or IP address).
	TLSVerifyFull TLSMode = "verify-full"
)

// TLSModes lists every mode, for validation messages.
var TLSModes = []TLSMode{TLSDisabled, TLSPreferred, TLSRequired, TLSVerifyCA, TLSVerifyFull}

// Verified reports whether the mode authenticates the server before myha
// sends anything that depends on the password: with it, a server that
// cannot prove its identity never receives a login attempt.
func (m TLSMode) Verified() bool {
	return m == TLSRequired || m == TLSVerifyCA || m == TLSVerifyFull
}

// TLSSpec is a cluster's TLS settings as plain values from the config.
// Files are read at each connection, so a renewed certificate is used
// without a restart.
type TLSSpec struct {
	Mode TLSMode
	// CAFile verifies the servers' certificates (PEM); empty means the
	// system's roots (not allowed with verify-ca). Replicas are given the
	// same path as MASTER_SSL_CA: it must exist on the database hosts too.
	CAFile string
	// CertFile and KeyFile are a client certificate, for accounts that
	// REQUIRE X509 or SUBJECT.
	CertFile, KeyFile string
}

// mode treats an unset mode as disabled (specs built by tests and tools
// that never heard of TLS).
func (s TLSSpec) mode() TLSMode {
	if s.Mode == "" {
		return TLSDisabled
	}
	return s.Mode
}

// CertError is a server whose TLS certificate myha does not trust: the
// connection was closed during the TLS handshake, before the login.
type CertError struct {
	Mode   TLSMode
	CAFile string
	Err    error
}

// Error says why and that nothing was sent.
func (e *CertError) Error() string {
	roots := "the system's trusted roots"
	if e.CAFile != "" {
		roots = "tls.ca_file " + e.CAFile
	}
	return fmt.Sprintf("its TLS certificate is not trusted (tls.mode %s, checked against %s): %v; myha closed the connection before sending the user name or password", e.Mode, roots, e.Err)
}

// Unwrap gives the x509 error.
func (e *CertError) Unwrap() error { return e.Err }

// ClientConfig builds the TLS configuration for one connection to addr
// (host:port), or nil in disabled mode. The configuration is new on each
// call: no state is shared between connections or clusters.
func (s TLSSpec) ClientConfig(addr string) (*tls.Config, error) {
	mode := s.mode()
	switch mode {
	case TLSDisabled:
		return nil, nil
	case TLSPreferred, TLSRequired, TLSVerifyCA, TLSVerifyFull:
	default:
		return nil, fmt.Errorf("unknown tls.mode %q", mode)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CertFile != "" || s.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if mode == TLSPreferred {
		// Encryption against eavesdroppers only, as MySQL's PREFERRED.
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	var roots *x509.CertPool // nil: the system's roots
	if s.CAFile != "" {
		var err error
		if roots, err = LoadCAFile(s.CAFile); err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
	} else if mode == TLSVerifyCA {
		return nil, errors.New("tls.mode verify-ca needs tls.ca_file")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	// Verification is done here rather than by crypto/tls so that every
	// mode fails with the same clear error, and so that required and
	// verify-ca can check the chain without the host name.
	cfg.InsecureSkipVerify = true
	checkHost := mode == TLSVerifyFull
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verifyChain(cs.PeerCertificates, roots, host, checkHost); err != nil {
			return &CertError{Mode: mode, CAFile: s.CAFile, Err: err}
		}
		return nil
	}
	return cfg, nil
}

// verifyChain checks the server's certificate chain against roots (nil:
// the system's), as a server certificate, and the host name or IP when
// checkHost is set.
func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, host string, checkHost bool) error {
	if len(certs) == 0 {
		return errors.New("the server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if checkHost {
		opts.DNSName = host
	}
	_, err := certs[0].Verify(opts)
	return err
}

// LoadCAFile reads a PEM file of one or more CA certificates.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
