package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/myha/myha/certs"
)

func (a *app) certsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make the deployment's CA and per-monitor certificates (raft mutual TLS, HTTPS API)",
		Long: "myha certs init --dir D makes a CA (D/ca.crt, D/ca.key mode 0600, ECDSA P-256).\n" +
			"myha certs issue --dir D --name mon1 --ip 198.18.0.21 makes D/mon1.crt and D/mon1.key signed by it.\n" +
			"Copy ca.crt and a monitor's own pair to that monitor; keep ca.key off the monitors.",
	}
	var dir string
	initCmd := &cobra.Command{
		Use:   "init --dir D",
		Short: "Create a new CA in D (refuses to replace one)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := certs.Init(dir); err != nil {
				return withCode(exitProblem, err)
			}
			fmt.Fprintf(a.stdout, "CA written to %s/%s (key %s/%s, mode 0600)\n", dir, certs.CAFile, dir, certs.CAKeyFile)
			return nil
		},
	}
	var name string
	var ips, dns []string
	issue := &cobra.Command{
		Use:   "issue --dir D --name NAME --ip ADDR",
		Short: "Issue a certificate for a monitor, signed by the CA in D",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var parsed []net.IP
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return withCode(exitProblem, fmt.Errorf("--ip %q is not an IP address", s))
				}
				parsed = append(parsed, ip)
			}
			if err := certs.Issue(dir, name, parsed, dns); err != nil {
				return withCode(exitProblem, err)
			}
			fmt.Fprintf(a.stdout, "certificate for %s written to %s/%s.crt (key %s/%s.key, mode 0600)\n", name, dir, name, dir, name)
			return nil
		},
	}
	for _, c := range []*cobra.Command{initCmd, issue} {
		c.Flags().StringVar(&dir, "dir", "", "directory of the CA")
		c.MarkFlagRequired("dir")
	}
	issue.Flags().StringVar(&name, "name", "", "the monitor's name, as in the config's monitors list")
	issue.Flags().StringSliceVar(&ips, "ip", nil, "the monitor's IP addresses (repeatable)")
	issue.Flags().StringSliceVar(&dns, "dns", nil, "extra DNS names (repeatable)")
	issue.MarkFlagRequired("name")
	cmd.AddCommand(initCmd, issue)
	return cmd
}
