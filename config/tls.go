package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// TLS is how myha, and the replicas it repoints, protect connections to a
// cluster's servers. Modes: disabled (plain text), preferred (TLS when the
// server offers it, server not verified; the default), required (TLS, and
// the certificate chain must verify against ca_file or the system's roots),
// verify-ca (chain against ca_file), verify-full (chain and the server's
// host name or IP). With required and above a server that cannot prove its
// identity never receives a login attempt.
type TLS struct {
	Mode string `mapstructure:"mode"`
	// CAFile verifies the servers' certificates; replicas get the same path
	// as MASTER_SSL_CA, so it must exist on the database hosts too.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a client certificate, for accounts that
	// REQUIRE X509.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// DefaultTLSMode encrypts whenever the server can, as MySQL clients do.
const DefaultTLSMode = "preferred"

var tlsModes = []string{"disabled", "preferred", "required", "verify-ca", "verify-full"}

// Verified says whether the mode authenticates the server.
func (t TLS) Verified() bool {
	return t.Mode == "required" || t.Mode == "verify-ca" || t.Mode == "verify-full"
}

// resolveTLS defaults the mode and checks the settings and that every file
// is readable and holds what it should, so a typo is found by config check
// rather than at the first connection of a failover.
func resolveTLS(key string, t *TLS, opt Options) Errors {
	var errs Errors
	bad := func(k, format string, a ...any) {
		errs = append(errs, &Error{Key: key + ".tls" + k, Problem: fmt.Sprintf(format, a...)})
	}
	if t.Mode == "" {
		t.Mode = DefaultTLSMode
	}
	if !slices.Contains(tlsModes, t.Mode) {
		bad(".mode", "%q: use %s", t.Mode, strings.Join(tlsModes, ", "))
	}
	if t.Mode == "verify-ca" && t.CAFile == "" {
		bad(".ca_file", "missing: verify-ca checks the servers' certificates against this CA (or use required/verify-full with the system's roots)")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("", "set cert_file and key_file together")
	}
	if t.Mode == "disabled" && (t.CAFile != "" || t.CertFile != "") {
		bad(".mode", "disabled, yet ca_file or cert_file is set: choose a TLS mode or remove the files")
	}
	read := func(k, path string) []byte {
		if path == "" {
			return nil
		}
		if !filepath.IsAbs(path) {
			bad(k, "%q must be an absolute path", path)
			return nil
		}
		b, err := opt.ReadFile(path)
		if err != nil {
			bad(k, "cannot read %s: %s", path, statReason(err))
			return nil
		}
		return b
	}
	if b := read(".ca_file", t.CAFile); b != nil && !x509.NewCertPool().AppendCertsFromPEM(b) {
		bad(".ca_file", "%s holds no PEM certificate", t.CAFile)
	}
	cert, key2 := read(".cert_file", t.CertFile), read(".key_file", t.KeyFile)
	if cert != nil && key2 != nil {
		if _, err := tls.X509KeyPair(cert, key2); err != nil {
			bad("", "cert_file %s and key_file %s are not a certificate and its key: %v", t.CertFile, t.KeyFile, err)
		}
	}
	return errs
}
