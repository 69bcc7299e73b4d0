package config

import (
	"io"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// WriteYAML renders a config in the documented file format through the
// YAML library, so every value reads back as the same string whatever it
// looks like (a password "0x1F", "yes", "1e3" or "- x" stays a string).
// Secrets are written only when withSecrets is set; otherwise they become a
// *_file placeholder with a comment naming the environment variable to use
// instead.
func WriteYAML(w io.Writer, c *Config, withSecrets bool) error {
	var clusters []*yaml.Node
	for _, cl := range c.Clusters {
		m := mapping()
		add(m, "name", str(cl.Name))
		add(m, "user", str(cl.User))
		addSecret(m, "password", cl.Name, cl.Password, withSecrets)
		if cl.ReplicationUser != "" {
			add(m, "replication_user", str(cl.ReplicationUser))
		}
		addSecret(m, "replication_password", cl.Name, cl.ReplicationPassword, withSecrets)
		if cl.Probe == "write" {
			add(m, "probe", str("write"))
		}
		if cl.CheckInterval != 0 && cl.CheckInterval != DefaultCheckInterval {
			add(m, "check_interval", str(cl.CheckInterval.String()))
		}
		if f := cl.Failover; f.MasterIPFailoverScript != "" || f.MasterIPOnlineChangeScript != "" || f.ShutdownScript != "" {
			fm := mapping()
			for _, kv := range [][2]string{{"master_ip_failover_script", f.MasterIPFailoverScript},
				{"master_ip_online_change_script", f.MasterIPOnlineChangeScript}, {"shutdown_script", f.ShutdownScript}} {
				if kv[1] != "" {
					add(fm, kv[0], str(kv[1]))
				}
			}
			add(m, "failover", fm)
		}
		servers := &yaml.Node{Kind: yaml.SequenceNode}
		for _, s := range cl.Servers {
			sm := mapping()
			add(sm, "address", str(s.Address))
			if s.Candidate {
				add(sm, "candidate", scalar("!!bool", "true"))
			}
			if s.NoMaster {
				add(sm, "no_master", scalar("!!bool", "true"))
			}
			if s.Priority != 0 {
				add(sm, "priority", scalar("!!int", strconv.Itoa(s.Priority)))
			}
			servers.Content = append(servers.Content, sm)
		}
		add(m, "servers", servers)
		if cl.VIP != nil {
			vm := mapping()
			add(vm, "address", str(cl.VIP.Address))
			add(vm, "interface", str(cl.VIP.Interface))
			add(m, "vip", vm)
		}
		clusters = append(clusters, m)
	}
	root := mapping()
	if c.Notify.ReportScript != "" {
		nm := mapping()
		add(nm, "report_script", str(c.Notify.ReportScript))
		add(root, "notify", nm)
	}
	add(root, "clusters", &yaml.Node{Kind: yaml.SequenceNode, Content: clusters})
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return err
	}
	return enc.Close()
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

// str is a string scalar: the encoder quotes it when a bare form would
// read back as another type in YAML 1.2; words YAML 1.1 readers take for
// booleans (yes, off, y) are quoted too, for tools other than ours.
func str(s string) *yaml.Node {
	n := scalar("!!str", s)
	switch strings.ToLower(s) {
	case "yes", "no", "on", "off", "y", "n":
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

func scalar(tag, v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v} }

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

func addSecret(m *yaml.Node, key, cluster string, s Secret, withSecrets bool) {
	switch {
	case s == "":
	case withSecrets:
		add(m, key, str(s.Value()))
	default:
		v := str("/etc/myha/" + cluster + "." + strings.ReplaceAll(key, "_", "-"))
		v.LineComment = "or set " + EnvName(cluster, key) + "; rerun with --with-secrets to inline it"
		add(m, key+"_file", v)
	}
}
