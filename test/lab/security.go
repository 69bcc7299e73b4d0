package lab

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/myha/myha/certs"
)

// SecurityYAML makes what a secure deployment needs in dir — a CA, a
// certificate per monitor (named after it, for its IP), a gossip key and
// an API write token (apiToken) — and returns the config's security:
// section pointing at them. Every file is mode 0600 except certificates.
func SecurityYAML(dir, apiToken string, monitors map[string]string) (string, error) {
	tlsDir := filepath.Join(dir, "tls")
	if err := certs.Init(tlsDir); err != nil {
		return "", err
	}
	for name, ip := range monitors {
		if err := certs.Issue(tlsDir, name, []net.IP{net.ParseIP(ip)}, nil); err != nil {
			return "", err
		}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	keyFile, tokFile := filepath.Join(dir, "gossip.key"), filepath.Join(dir, "api.token")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.WriteFile(tokFile, []byte(apiToken+"\n"), 0o600); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "security:\n  gossip_key_file: %s\n  api_token_file: %s\n", keyFile, tokFile)
	fmt.Fprintf(&b, "  ca_file: %s\n  cert_file: %s\n  key_file: %s\n", filepath.Join(tlsDir, certs.CAFile),
		filepath.Join(tlsDir, "{name}.crt"), filepath.Join(tlsDir, "{name}.key"))
	return b.String(), nil
}
