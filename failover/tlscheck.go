package failover

import (
	"fmt"

	"github.com/myha/myha/topology"
)

const tlsFix = "set the cluster's tls.mode to verify-full with tls.ca_file, and give the servers ssl_ca, ssl_cert and ssl_key"

// tlsChecks say how the cluster's connections are protected: the mode
// (disabled and preferred do not authenticate the servers, so a man in the
// middle can read and relay the session), each server's session as myha
// saw it, and, with a verified mode, whether each replica connects to its
// source with TLS.
func tlsChecks(s *topology.Snapshot, mode topology.TLSMode, session map[string]string) []Check {
	var out []Check
	switch mode {
	case topology.TLSDisabled, "":
		out = append(out, Check{Name: "tls", Status: Warn, Message: "tls.mode disabled: myha's sessions and the replicas' travel in plain text; anyone on the network path can read them and relay a login", Fix: tlsFix})
	case topology.TLSPreferred:
		out = append(out, Check{Name: "tls", Status: Warn, Message: "tls.mode preferred: TLS when a server offers it, but no server is verified: open to a man in the middle", Fix: tlsFix})
	case topology.TLSRequired:
		out = append(out, Check{Name: "tls", Status: OK, Message: "tls.mode required: TLS with a verified certificate chain (host names not checked: any certificate of the CA is accepted)"})
	case topology.TLSVerifyCA:
		out = append(out, Check{Name: "tls", Status: OK, Message: "tls.mode verify-ca: TLS with the chain verified against tls.ca_file (host names not checked)"})
	case topology.TLSVerifyFull:
		out = append(out, Check{Name: "tls", Status: OK, Message: "tls.mode verify-full: TLS with the chain and the server's name verified"})
	}
	for _, v := range s.Servers {
		ver, asked := session[v.Spec.Address]
		if !asked {
			continue
		}
		if ver == "" {
			out = append(out, Check{Name: "tls", Status: Warn, Server: v.Spec.Address, Message: "myha's session is plain text: the server offers no TLS", Fix: tlsFix})
			continue
		}
		out = append(out, Check{Name: "tls", Status: OK, Server: v.Spec.Address, Message: "myha's session uses " + ver})
	}
	if !mode.Verified() {
		return out
	}
	for _, v := range s.Servers {
		if !v.Reachable {
			continue
		}
		for _, c := range v.Replication {
			switch {
			case !c.SSL:
				out = append(out, Check{Name: "replication_tls", Status: Warn, Server: v.Spec.Address,
					Message: fmt.Sprintf("replicates from %s without TLS although tls.mode is %s (myha's next repoint turns it on)", c.Source(), mode),
					Fix:     "CHANGE MASTER TO MASTER_SSL=1, MASTER_SSL_CA='<tls.ca_file>' (and MASTER_SSL_VERIFY_SERVER_CERT=1 for verify-full), then START SLAVE"})
			case mode == topology.TLSVerifyFull && !c.SSLVerifyHost:
				out = append(out, Check{Name: "replication_tls", Status: Warn, Server: v.Spec.Address,
					Message: fmt.Sprintf("replicates from %s with TLS but does not check its host name, which tls.mode verify-full asks for", c.Source()),
					Fix:     "CHANGE MASTER TO MASTER_SSL_VERIFY_SERVER_CERT=1, then START SLAVE"})
			default:
				out = append(out, Check{Name: "replication_tls", Status: OK, Server: v.Spec.Address, Message: "replicates from " + c.Source() + " with TLS"})
			}
		}
	}
	return out
}
