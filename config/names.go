package config

import (
	"net"
	"os"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// ClusterNames is each cluster's name and server addresses as written in a
// config file, read leniently (no validation, no secrets) for shell
// completion: a file that does not validate yet still completes names.
func ClusterNames(path string) ([]ClusterServers, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Clusters []struct {
			Name    string `yaml:"name"`
			Servers []struct {
				Address string `yaml:"address"`
			} `yaml:"servers"`
		} `yaml:"clusters"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	var out []ClusterServers
	for _, c := range f.Clusters {
		cs := ClusterServers{Name: c.Name}
		for _, s := range c.Servers {
			addr := s.Address
			if _, _, err := net.SplitHostPort(addr); err != nil && addr != "" {
				addr = net.JoinHostPort(addr, strconv.Itoa(DefaultPort))
			}
			cs.Servers = append(cs.Servers, addr)
		}
		out = append(out, cs)
	}
	return out, nil
}

// ClusterServers is one cluster's name and its servers (host:port).
type ClusterServers struct {
	Name    string
	Servers []string
}
