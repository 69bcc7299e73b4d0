package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteYAML renders a config in the documented file format. Secrets are
// written only when withSecrets is set; otherwise they become a placeholder
// and a comment naming the environment variable to use instead.
func WriteYAML(w io.Writer, c *Config, withSecrets bool) error {
	var b strings.Builder
	b.WriteString("clusters:\n")
	for _, cl := range c.Clusters {
		fmt.Fprintf(&b, "  - name: %s\n", yamlString(cl.Name))
		fmt.Fprintf(&b, "    user: %s\n", yamlString(cl.User))
		writeSecret(&b, "password", cl.Name, cl.Password, withSecrets)
		if cl.ReplicationUser != "" {
			fmt.Fprintf(&b, "    replication_user: %s\n", yamlString(cl.ReplicationUser))
		}
		writeSecret(&b, "replication_password", cl.Name, cl.ReplicationPassword, withSecrets)
		if cl.Probe == "write" {
			b.WriteString("    probe: write\n")
		}
		if cl.CheckInterval != 0 && cl.CheckInterval != DefaultCheckInterval {
			fmt.Fprintf(&b, "    check_interval: %s\n", cl.CheckInterval)
		}
		if f := cl.Failover; f.MasterIPFailoverScript != "" || f.MasterIPOnlineChangeScript != "" || f.ShutdownScript != "" {
			b.WriteString("    failover:\n")
			for _, kv := range [][2]string{{"master_ip_failover_script", f.MasterIPFailoverScript},
				{"master_ip_online_change_script", f.MasterIPOnlineChangeScript}, {"shutdown_script", f.ShutdownScript}} {
				if kv[1] != "" {
					fmt.Fprintf(&b, "      %s: %s\n", kv[0], yamlString(kv[1]))
				}
			}
		}
		b.WriteString("    servers:\n")
		for _, s := range cl.Servers {
			fmt.Fprintf(&b, "      - address: %s\n", yamlString(s.Address))
			if s.Candidate {
				b.WriteString("        candidate: true\n")
			}
			if s.NoMaster {
				b.WriteString("        no_master: true\n")
			}
			if s.Priority != 0 {
				fmt.Fprintf(&b, "        priority: %d\n", s.Priority)
			}
		}
		if cl.VIP != nil {
			fmt.Fprintf(&b, "    vip:\n      address: %s\n      interface: %s\n", yamlString(cl.VIP.Address), yamlString(cl.VIP.Interface))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSecret(b *strings.Builder, key, cluster string, s Secret, withSecrets bool) {
	switch {
	case s == "":
	case withSecrets:
		fmt.Fprintf(b, "    %s: %s\n", key, yamlString(s.Value()))
	default:
		fmt.Fprintf(b, "    %s_file: /etc/myha/%s.%s  # or set %s; rerun with --with-secrets to inline it\n",
			key, cluster, strings.ReplaceAll(key, "_", "-"), EnvName(cluster, key))
	}
}

// yamlString quotes a scalar so YAML reads it back as the same string.
func yamlString(s string) string {
	if s != "" && !strings.ContainsAny(s, ":#{}[],&*!|>'\"%@`\\\n\t") && strings.TrimSpace(s) == s &&
		!looksTyped(s) && s[0] != '-' && s[0] != '?' {
		return s
	}
	return strconv.Quote(s)
}

func looksTyped(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n":
		return true
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
