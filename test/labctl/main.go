// Command labctl brings a persistent MariaDB lab up or down for the demo and
// for trying myha by hand (make lab-up, make lab-down).
//
//	labctl up [-servers 3] [-co-primary] [-config out.yaml]
//	labctl down
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/myha/myha/test/lab"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: labctl up|down [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "up":
		fs := flag.NewFlagSet("up", flag.ExitOnError)
		n := fs.Int("servers", 3, "number of MariaDB servers")
		co := fs.Bool("co-primary", false, "db1 and db2 replicate from each other")
		out := fs.String("config", "", "also copy the lab's myha config here")
		fs.Parse(os.Args[2:])
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		l, err := lab.Start(ctx, lab.Options{Servers: *n, CoPrimary: *co, Persistent: true, Hosts: []string{"mon1", "mon2", "mon3", "client"}})
		if err != nil {
			fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
			os.Exit(1)
		}
		cfg, err := l.WriteConfig()
		if err != nil {
			fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
			os.Exit(1)
		}
		if *out != "" {
			if err := os.WriteFile(*out, []byte(l.ConfigYAML()), 0o600); err != nil {
				fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
				os.Exit(1)
			}
			cfg = *out
		}
		mode := "network namespaces on bridge " + l.Bridge + " (" + l.Subnet + ")"
		if !l.Netns {
			mode = "127.0.0.1 (not root: no namespaces)"
		}
		fmt.Printf("lab %d up in %s: %d MariaDB servers on %s\n", l.ID, time.Since(start).Round(time.Millisecond), len(l.Servers), mode)
		for _, s := range l.Servers {
			fmt.Printf("  %s  %s  datadir %s\n", s.Name, s.Addr(), s.DataDir)
		}
		fmt.Printf("config: %s\nremove it with: make lab-down\n", cfg)
	case "down":
		lab.DestroyAll()
		fmt.Println("all labs removed")
	default:
		fmt.Fprintf(os.Stderr, "labctl: unknown command %q (up or down)\n", os.Args[1])
		os.Exit(2)
	}
}
