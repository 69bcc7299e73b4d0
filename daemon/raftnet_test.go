package daemon

import (
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/myha/myha/certs"
)

func issue(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := certs.Init(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := certs.Issue(dir, n, []net.IP{net.ParseIP("127.0.0.1")}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func files(dir, name string) TLSFiles {
	return TLSFiles{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
}

// tlsTransport starts a raft transport over tlsStream on a free loopback port.
func tlsTransport(t *testing.T, f TLSFiles, mons *[]MonitorAddr) (*raft.NetworkTransport, *tlsStream) {
	t.Helper()
	s, err := newTLSStream("127.0.0.1:0", f, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransport(s, 2, 2*time.Second, nil)
	t.Cleanup(func() { tr.Close() })
	return tr, s
}

func port(a net.Addr) int { return a.(*net.TCPAddr).Port }

// Only a node with a certificate from the deployment's CA, naming a
// configured monitor, can append entries or ask for votes.
func TestRaftTLSRefusesNodesWithoutTheClusterCertificate(t *testing.T) {
	good, other := t.TempDir(), t.TempDir()
	issue(t, good, "mon1", "mon2", "rogue")
	issue(t, other, "mon2") // the right name from the wrong CA

	var mons []MonitorAddr
	srv, srvStream := tlsTransport(t, files(good, "mon1"), &mons)
	cli, cliStream := tlsTransport(t, files(good, "mon2"), &mons)
	mons = []MonitorAddr{{Name: "mon1", Address: "127.0.0.1", RaftPort: port(srvStream.Addr())}, {Name: "mon2", Address: "127.0.0.1", RaftPort: port(cliStream.Addr())}}
	srvStream.monitors, cliStream.monitors = mons, mons

	var served atomic.Int32
	go func() {
		for rpc := range srv.Consumer() {
			served.Add(1)
			switch rpc.Command.(type) {
			case *raft.AppendEntriesRequest:
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			case *raft.RequestVoteRequest:
				rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil)
			default:
				rpc.Respond(nil, nil)
			}
		}
	}()
	target := raft.ServerAddress(srvStream.Addr().String())
	appendTo := func(tr raft.Transport) error {
		var resp raft.AppendEntriesResponse
		return tr.AppendEntries("mon1", target, &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("mon2"), Addr: []byte("x")}, Term: 99,
			Entries: []*raft.Log{{Index: 1, Term: 99, Type: raft.LogCommand, Data: []byte(`{"op":"primary","cluster":"c","primary":"evil:3306"}`)}}}, &resp)
	}
	voteFrom := func(tr raft.Transport) error {
		var resp raft.RequestVoteResponse
		return tr.RequestVote("mon1", target, &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("mon2")}, Term: 99}, &resp)
	}

	if err := appendTo(cli); err != nil {
		t.Fatalf("a monitor with the cluster's certificate could not append: %v", err)
	}
	if served.Load() != 1 {
		t.Fatalf("served %d RPCs", served.Load())
	}

	rogues := map[string]raft.Transport{}
	foreign, foreignStream := tlsTransport(t, files(other, "mon2"), nil)
	foreignStream.monitors = mons
	rogues["certificate from another CA"] = foreign
	unlisted, unlistedStream := tlsTransport(t, files(good, "rogue"), nil)
	unlistedStream.monitors = mons
	rogues["cluster certificate of a name that is not a monitor"] = unlisted
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 2*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	rogues["no TLS at all"] = plain
	for what, tr := range rogues {
		if err := appendTo(tr); err == nil {
			t.Errorf("%s: append accepted", what)
		}
		if err := voteFrom(tr); err == nil {
			t.Errorf("%s: vote request accepted", what)
		}
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("the server handled %d RPCs; rogue ones reached raft", n)
	}

	// The client side checks the server too: a server with another CA's
	// certificate is not spoken to.
	evil, evilStream := tlsTransport(t, files(other, "mon2"), nil)
	_ = evil
	cliStream.monitors = append(mons, MonitorAddr{Name: "mon2", Address: "127.0.0.1", RaftPort: port(evilStream.Addr())})
	var resp raft.AppendEntriesResponse
	if err := cli.AppendEntries("mon2", raft.ServerAddress("127.0.0.1:"+strconv.Itoa(port(evilStream.Addr()))), &raft.AppendEntriesRequest{Term: 1}, &resp); err == nil {
		t.Fatal("a monitor sent entries to a server with a foreign certificate")
	}
}
