package config

import (
	"fmt"
	"os"
	"strings"
)

// PermissionWarnings names the config file and secret files that users
// other than the owner can read: with one config on every host, a
// world-readable password, key or token is readable by every local user.
// Inline passwords make the config file itself secret.
func PermissionWarnings(path string, c *Config) []string {
	var out []string
	check := func(key, p string, secret bool) {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o004 == 0 {
			return
		}
		if secret {
			out = append(out, fmt.Sprintf("%s: %s is readable by every user (mode %v): chmod 600 it", key, p, st.Mode().Perm()))
		}
	}
	inline := false
	for _, cl := range c.Clusters {
		if cl.PasswordFile == "" && cl.Password != "" || cl.ReplicationPasswordFile == "" && cl.ReplicationPassword != "" {
			inline = true
		}
	}
	check("config file (holds inline passwords)", path, inline)
	for i, cl := range c.Clusters {
		check(fmt.Sprintf("clusters[%d].password_file", i), cl.PasswordFile, cl.PasswordFile != "")
		check(fmt.Sprintf("clusters[%d].replication_password_file", i), cl.ReplicationPasswordFile, cl.ReplicationPasswordFile != "")
		check(fmt.Sprintf("clusters[%d].tls.key_file", i), cl.TLS.KeyFile, cl.TLS.KeyFile != "")
	}
	s := c.Security
	for _, f := range []struct{ key, path string }{{"security.gossip_key_file", s.GossipKeyFile}, {"security.api_token_file", s.APITokenFile},
		{"security.api_read_token_file", s.APIReadTokenFile}, {"security.key_file", s.KeyFile}, {"security.api_key_file", s.APIKeyFile}} {
		if f.path == "" {
			continue
		}
		if strings.Contains(f.path, "{name}") {
			for _, m := range c.Monitors {
				check(f.key, NodeFile(f.path, m.Name), true)
			}
			continue
		}
		check(f.key, f.path, true)
	}
	if s.Insecure {
		out = append(out, "security.insecure is set: gossip may be unencrypted and raft unauthenticated (tests only)")
	}
	return out
}
