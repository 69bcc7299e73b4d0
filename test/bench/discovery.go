package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/myha/myha/test/fakeserver"
	"github.com/myha/myha/test/lab"
	"github.com/myha/myha/topology"
)

func benchDiscovery(ctx context.Context, runs int) error {
	start := time.Now()
	l, err := startLab(ctx, lab.Options{Servers: 3})
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Printf("discovery: 3-server MariaDB lab up in %s (netns=%v)\n", time.Since(start).Round(time.Millisecond), l.Netns)
	spec := topology.ClusterSpec{Name: "lab", Credentials: topology.Credentials{User: lab.AdminUser, Password: lab.AdminPass},
		ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}
	for _, s := range l.Servers {
		spec.Servers = append(spec.Servers, topology.ServerSpec{Address: s.Addr()})
	}
	d := topology.SQLDialer{Credentials: spec.Credentials, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}
	if s := timeDiscover(ctx, spec, d, runs, 3); s != nil {
		fmt.Printf("  3 real servers:  %s   (goal: under 100ms)\n", s)
	}

	// 50 servers: FAKE servers (test/fakeserver, real wire protocol on
	// loopback, scripted MariaDB state), because 50 real mariadbd would not
	// fit a 2-core machine alongside the measurement.
	fakes, fspec, err := fakeCluster(50)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range fakes {
			f.Close()
		}
	}()
	fd := topology.SQLDialer{Credentials: fspec.Credentials, ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}
	if s := timeDiscover(ctx, fspec, fd, runs, 50); s != nil {
		fmt.Printf("  50 FAKE servers: %s   (fakes: go-mysql server package on loopback)\n", s)
	}
	return nil
}

func timeDiscover(ctx context.Context, spec topology.ClusterSpec, d topology.Dialer, runs, want int) *stats {
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		t := time.Now()
		snap := topology.Discover(ctx, spec, d)
		ds = append(ds, time.Since(t))
		reachable := 0
		for _, s := range snap.Servers {
			if s.Reachable {
				reachable++
			}
		}
		if reachable != want || snap.Primary == "" {
			fmt.Printf("  run %d: only %d/%d reachable, primary %q: %v\n", i, reachable, want, snap.Primary, snap.Problems)
			return nil
		}
	}
	s := summarize(ds)
	return &s
}

func fakeCluster(n int) ([]*fakeserver.Server, topology.ClusterSpec, error) {
	spec := topology.ClusterSpec{Name: "fake", Credentials: topology.Credentials{User: "myha", Password: "pw"},
		ConnectTimeout: time.Second, ReadTimeout: 2 * time.Second}
	st := func(id int) fakeserver.State {
		return fakeserver.State{Version: "10.11.19-MariaDB-log", Comment: "fake",
			Vars: map[string]string{"server_id": fmt.Sprint(id), "read_only": map[bool]string{true: "OFF", false: "ON"}[id == 1],
				"log_bin": "ON", "log_slave_updates": "ON", "binlog_format": "ROW", "gtid_strict_mode": "ON",
				"gtid_binlog_pos": "0-1-1000", "gtid_slave_pos": "0-1-1000", "gtid_current_pos": "0-1-1000"},
			Status:         map[string]string{},
			ReplicaColumns: []string{"Connection_name", "Master_Host", "Master_Port", "Master_Server_Id", "Slave_IO_Running", "Slave_SQL_Running", "Seconds_Behind_Master", "Using_Gtid", "Gtid_IO_Pos"},
			BinlogFile:     "mysql-bin.000001", BinlogPos: 4,
		}
	}
	var fakes []*fakeserver.Server
	for i := 1; i <= n; i++ {
		s := st(i)
		if i > 1 {
			host, port, _ := net.SplitHostPort(fakes[0].Addr())
			s.ReplicaRows = []map[string]string{{"Connection_name": "", "Master_Host": host, "Master_Port": port, "Master_Server_Id": "1",
				"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": "0", "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1-1000"}}
		}
		f, err := fakeserver.Start("myha", "pw", s)
		if err != nil {
			return nil, spec, err
		}
		fakes = append(fakes, f)
		spec.Servers = append(spec.Servers, topology.ServerSpec{Address: f.Addr()})
	}
	if !strings.HasPrefix(spec.Servers[0].Address, "127.") {
		return nil, spec, fmt.Errorf("fakes must be on loopback")
	}
	return fakes, spec, nil
}
