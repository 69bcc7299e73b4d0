package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
)

// completeNames makes the shell complete --cluster with the config's
// cluster names and --new-primary / --server with its servers (of the
// --cluster given, if any). The config is read leniently: completion works
// before the file validates, and never prints an error into the shell.
func (a *app) completeNames(root *cobra.Command) {
	clusters := func(cmd *cobra.Command) []config.ClusterServers {
		path := a.configPath
		if f := cmd.Flag("config"); f != nil && f.Changed {
			path = f.Value.String()
		} else if a.getenv != nil && a.getenv("MYHA_CONFIG") != "" {
			path = a.getenv("MYHA_CONFIG")
		}
		p, err := config.Find(path)
		if err != nil {
			return nil
		}
		cs, _ := config.ClusterNames(p)
		return cs
	}
	clusterNames := func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, c := range clusters(cmd) {
			if strings.HasPrefix(c.Name, prefix) {
				out = append(out, c.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	servers := func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
		want := ""
		if f := cmd.Flag("cluster"); f != nil {
			want = f.Value.String()
		}
		var out []string
		for _, c := range clusters(cmd) {
			if want != "" && c.Name != want {
				continue
			}
			for _, s := range c.Servers {
				if strings.HasPrefix(s, prefix) {
					out = append(out, s)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("cluster") != nil {
			c.RegisterFlagCompletionFunc("cluster", clusterNames)
		}
		for _, name := range []string{"new-primary", "server"} {
			if c.Flags().Lookup(name) != nil {
				c.RegisterFlagCompletionFunc(name, servers)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
