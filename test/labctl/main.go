// Command labctl brings a persistent MariaDB lab up or down for the demo and
// for trying myha by hand (make lab-up, make lab-down), and runs the demo's
// client.
//
//	labctl up [-servers 3] [-co-primary] [-config out.yaml]  prints "lab: N"
//	labctl down [-id N]   your persistent labs, or lab N, and says which
//	labctl list           every lab, its owner and whether it is in use
//	labctl write -id N [-killed-at FILE]  write rows until SIGTERM, then report
//
// Labs belong to whoever made them: down never removes another user's lab or
// one a running test owns.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
		monitors := fs.Bool("monitors", false, "add the three monitor hosts to the config (monitors:, state_dir)")
		rejoin := fs.Bool("auto-rejoin", false, "set failover.auto_rejoin: an old primary that comes back becomes a replica")
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
		// The lab's records live and die with the lab: never in the
		// machine's default state_dir, shared with other labs and users.
		yaml := "state_dir: " + filepath.Join(l.Dir, "state") + "\n" + l.ConfigYAML()
		if *monitors {
			yaml = monitorsYAML(l) + l.ConfigYAML() // monitorsYAML names the state_dir
		}
		if *rejoin {
			// ConfigYAML ends inside the one cluster's mapping.
			yaml += "    failover:\n      auto_rejoin: true\n"
		}
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
			os.Exit(1)
		}
		if *out != "" {
			if err := os.WriteFile(*out, []byte(yaml), 0o600); err != nil {
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
		for _, h := range l.Hosts {
			fmt.Printf("  %-6s %s (namespace %s)\n", h.Name, h.IP, orLoopback(h.NS))
		}
		fmt.Printf("lab: %d\ndir: %s\nconfig: %s\nremove it with: make lab-down (or labctl down -id %d)\n", l.ID, l.Dir, cfg, l.ID)
	case "down":
		fs := flag.NewFlagSet("down", flag.ExitOnError)
		id := fs.Int("id", 0, "remove only this lab (default: every persistent lab you made)")
		fs.Parse(os.Args[2:])
		if *id != 0 {
			in, err := lab.DestroyID(*id, os.Geteuid())
			if err != nil {
				fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
				os.Exit(1)
			}
			fmt.Printf("removed lab %d (%s)\n", in.ID, in.Subnet)
			return
		}
		done := lab.DestroyMine(os.Geteuid())
		for _, in := range done {
			fmt.Printf("removed lab %d (%s)\n", in.ID, in.Subnet)
		}
		if len(done) == 0 {
			fmt.Println("no lab of yours to remove")
		}
		for _, in := range lab.List() {
			fmt.Printf("left lab %d: %s\n", in.ID, describe(in))
		}
	case "list":
		for _, in := range lab.List() {
			fmt.Printf("lab %d (%s): %s\n", in.ID, in.Subnet, describe(in))
		}
	case "write":
		write(os.Args[2:])
	case "start":
		start(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "labctl: unknown command %q (up, down, list, write or start)\n", os.Args[1])
		os.Exit(2)
	}
}

// describe says whose a lab is, for down and list.
func describe(in lab.Info) string {
	who := fmt.Sprintf("uid %d", in.UID)
	if in.UID < 0 {
		who = "no recorded owner (remove it with labctl down -id " + fmt.Sprint(in.ID) + ")"
	}
	switch {
	case in.Alive:
		return "a running test's, " + who
	case in.Persistent:
		return "persistent, " + who
	default:
		return "left by a test that ended, " + who + " (the next lab start sweeps it)"
	}
}

// monitorsYAML lists the three monitor hosts; on loopback they share
// 127.0.0.1 with ports of their own.
func monitorsYAML(l *lab.Lab) string {
	ips := map[string]string{}
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		ips[n] = l.Host(n).IP
	}
	sec, err := lab.SecurityYAML(l.Dir, "lab-api-token", ips)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
		os.Exit(1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\n%smonitors:\n", filepath.Join(l.Dir, "state"), sec)
	for _, n := range []string{"mon1", "mon2", "mon3"} {
		h := l.Host(n)
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n", n, h.IP)
		if !l.Netns {
			// Monitors share 127.0.0.1: free ports of their own, so two
			// users' loopback labs never collide.
			var p [3]int
			for j := range p {
				var err error
				if p[j], err = lab.FreePort(); err != nil {
					fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
					os.Exit(1)
				}
			}
			fmt.Fprintf(&b, "    gossip_port: %d\n    raft_port: %d\n    api_port: %d\n", p[0], p[1], p[2])
		}
	}
	return b.String()
}

func orLoopback(ns string) string {
	if ns == "" {
		return "none: loopback"
	}
	return ns
}

// start starts a stopped (killed) server of a persistent lab again, with
// the data it had: an old primary coming back after a failover.
func start(args []string) {
	fs := flag.NewFlagSet("start", flag.ExitOnError)
	id := fs.Int("id", 0, "the lab (labctl up printed it)")
	name := fs.String("server", "", "the server, e.g. db1")
	fs.Parse(args)
	l, err := lab.Attach(*id)
	if err != nil {
		fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
		os.Exit(1)
	}
	for _, s := range l.Servers {
		if s.Name != *name {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Start(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "labctl: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("%s started (%s)\n", s.Name, s.Addr())
		return
	}
	fmt.Fprintf(os.Stderr, "labctl: lab %d has no server %q\n", *id, *name)
	os.Exit(2)
}
