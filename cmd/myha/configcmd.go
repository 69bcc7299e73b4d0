package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/myha/myha/config"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Validate a config file or import one from MHA"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the config file and report every problem",
		Long: "Validates the file as every command does, then resolves its host names (2 s each, all at\n" +
			"once) to find a server listed twice under two names (a host name and its IP) or two monitors\n" +
			"on one address and port.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			path, _ := config.Find(a.configPath)
			errs, warnings := config.CheckNames(cmd.Context(), cfg, config.DefaultLookup, 2*time.Second)
			if len(errs) > 0 {
				for _, e := range errs {
					e.File = path
				}
				return withCode(exitProblem, errs)
			}
			warnings = append(warnings, config.PermissionWarnings(path, cfg)...)
			if a.jsonOut {
				var names []string
				for _, c := range cfg.Clusters {
					names = append(names, c.Name)
				}
				return a.printJSON(map[string]any{"valid": true, "clusters": names, "warnings": append([]string{}, warnings...)})
			}
			for _, w := range warnings {
				fmt.Fprintf(a.stderr, "warning: %s\n", w)
			}
			servers := 0
			for _, c := range cfg.Clusters {
				servers += len(c.Servers)
			}
			fmt.Fprintf(a.stdout, "config OK: %d cluster(s), %d server(s)\n", len(cfg.Clusters), servers)
			return nil
		},
	})

	var name, output string
	var withSecrets bool
	imp := &cobra.Command{
		Use:   "import-mha FILE",
		Short: "Convert an MHA application config (INI) into myha YAML",
		Long: "Reads an MHA application config ([server default], [serverN]) and prints the equivalent\n" +
			"myha YAML. Passwords are written only with --with-secrets or into --output (mode 0600);\n" +
			"every MHA key that is not carried over is explained on stderr.",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			text, err := os.ReadFile(args[0])
			if err != nil {
				return withCode(exitProblem, fmt.Errorf("%s: cannot read: %v", args[0], err))
			}
			if name == "" {
				name = strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
			}
			cfg, notes, err := config.ImportMHA(string(text), name)
			if err != nil {
				return withCode(exitProblem, fmt.Errorf("%s: %v", args[0], err))
			}
			var buf bytes.Buffer
			if err := config.WriteYAML(&buf, cfg, withSecrets || output != ""); err != nil {
				return err
			}
			// The result must load: validate it as the daemon would.
			if output != "" || withSecrets {
				if _, err := config.Parse(buf.Bytes(), config.Options{}); err != nil {
					return withCode(exitProblem, fmt.Errorf("%s: the imported config is not valid: %v", args[0], err))
				}
			}
			for _, n := range notes {
				fmt.Fprintf(a.stderr, "note: %s\n", n)
			}
			if output != "" {
				if err := os.WriteFile(output, buf.Bytes(), 0o600); err != nil {
					return withCode(exitProblem, fmt.Errorf("--output %s: %v", output, err))
				}
				fmt.Fprintf(a.stderr, "wrote %s (mode 0600); check it with: myha config check --config %s\n", output, output)
				return nil
			}
			_, err = a.stdout.Write(buf.Bytes())
			return err
		},
	}
	imp.Flags().StringVar(&name, "name", "", "cluster name (default: the file name without extension)")
	imp.Flags().StringVarP(&output, "output", "o", "", "write the YAML, with passwords, to this file (mode 0600)")
	imp.Flags().BoolVar(&withSecrets, "with-secrets", false, "print passwords on stdout too")
	cmd.AddCommand(imp)
	return cmd
}
