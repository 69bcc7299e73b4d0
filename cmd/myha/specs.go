package main

import (
	"github.com/myha/myha/config"
	"github.com/myha/myha/topology"
)

// clusterSpec hands the validated config down as plain values: packages
// below cmd/ never see the config package or viper.
func clusterSpec(c config.Cluster) topology.ClusterSpec {
	spec := topology.ClusterSpec{
		Name:           c.Name,
		Credentials:    topology.Credentials{User: c.User, Password: c.Password.Value()},
		ConnectTimeout: c.ConnectTimeout,
		ReadTimeout:    c.ReadTimeout,
		TLS: topology.TLSSpec{Mode: topology.TLSMode(c.TLS.Mode), CAFile: c.TLS.CAFile,
			CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile},
	}
	for _, s := range c.Servers {
		spec.Servers = append(spec.Servers, topology.ServerSpec{
			Address: s.Address, Candidate: s.Candidate, NoMaster: s.NoMaster, Priority: s.Priority,
		})
	}
	return spec
}

func dialerFor(spec topology.ClusterSpec) topology.Dialer {
	return topology.SQLDialer{Credentials: spec.Credentials, ConnectTimeout: spec.ConnectTimeout, ReadTimeout: spec.ReadTimeout, TLS: spec.TLS}
}
