package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/myha/myha/test/lab"
)

// TestEtcdPublishingDrivesHAProxy is the seed deployment: the monitors'
// leader publishes the primary to a real etcd (Debian's etcd-server), a
// confd-style watcher in the test rewrites HAProxy's backend from the key
// and reloads HAProxy, and a client through HAProxy reaches whichever
// server is primary — before and after kill -9 of the primary.
func TestEtcdPublishingDrivesHAProxy(t *testing.T) {
	requireTool(t, "/usr/bin/etcd", "etcd-server")
	requireTool(t, "/usr/sbin/haproxy", "haproxy")
	ctx := context.Background()
	m := startMonitorsLab(t, lab.Options{Servers: 3, Hosts: []string{"etcd", "client"}}, "")
	m.RequireNetns(t) // etcd and HAProxy on hosts of their own

	eh := m.Host("etcd")
	endpoint := "http://" + eh.IP + ":2379"
	etcd := eh.Command(context.Background(), "/usr/bin/etcd", "--data-dir", filepath.Join(m.dir, "etcd"),
		"--listen-client-urls", endpoint, "--advertise-client-urls", endpoint, "--listen-peer-urls", "http://127.0.0.1:2380")
	elog, _ := os.Create(filepath.Join(m.dir, "etcd.log"))
	etcd.Stdout, etcd.Stderr = elog, elog
	must(t, etcd.Start())
	t.Cleanup(func() { etcd.Process.Signal(syscall.SIGTERM); etcd.Wait() })
	kv := &etcdKV{endpoint: endpoint}
	waitFor(t, "etcd to answer", 20*time.Second, func() bool { _, err := kv.get(ctx, "/myha/lab/"); return err == nil })

	// The monitors restart on a config that publishes to etcd.
	b, _ := readFile(m.cfg)
	writeFile(m.cfg, strings.Replace(b, "clusters:\n", "etcd:\n  endpoints: ["+endpoint+"]\n  ttl: 10s\nclusters:\n", 1))
	for _, h := range m.mons {
		m.kill(h.Name)
		m.start(t, h)
	}
	m.waitHealthy(t)
	db1 := m.Server("db1")
	waitFor(t, "etcd to name db1 the primary", 20*time.Second, func() bool {
		keys, _ := kv.get(ctx, "/myha/lab/")
		return keys["/myha/lab/primary"] == db1.Addr() && len(keys) == 3
	})

	// A confd-style consumer: on every change of the primary key, a new
	// backend file and an HAProxy reload (SIGUSR2 to the master).
	client := m.Host("client")
	bind := client.IP + ":13306"
	cfgPath := filepath.Join(m.dir, "haproxy-etcd.cfg")
	writeHAProxy := func(primary string) {
		writeFile(cfgPath, fmt.Sprintf("global\n    maxconn 200\ndefaults\n    mode tcp\n    timeout connect 1s\n    timeout client 60s\n    timeout server 60s\n"+
			"listen mysql-primary\n    bind %s\n    server primary %s\n", bind, primary))
	}
	writeHAProxy(db1.Addr())
	hp := client.Command(context.Background(), "/usr/sbin/haproxy", "-W", "-db", "-f", cfgPath)
	must(t, hp.Start())
	t.Cleanup(func() { hp.Process.Kill(); hp.Wait() })
	var mu sync.Mutex
	changes := map[string]time.Time{} // primary → when the watcher saw it
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		last := db1.Addr()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond): // confd's polling mode (-interval), faster
			}
			keys, err := kv.get(ctx, "/myha/lab/")
			if p := keys["/myha/lab/primary"]; err == nil && p != "" && p != last {
				last = p
				mu.Lock()
				changes[p] = time.Now()
				mu.Unlock()
				writeHAProxy(p)
				hp.Process.Signal(syscall.SIGUSR2)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-watched })
	waitFor(t, "HAProxy to route to db1", 20*time.Second, func() bool { id, err := serverIDVia(ctx, bind); return err == nil && id == "1" })

	killed := time.Now()
	must(t, db1.Kill())
	rep := m.oneFailoverEverywhere(t)
	waitFor(t, "etcd to name the new primary", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := changes[rep.NewPrimary]
		return ok
	})
	mu.Lock()
	seen := changes[rep.NewPrimary]
	mu.Unlock()
	wantID := map[string]string{m.Server("db2").Addr(): "2", m.Server("db3").Addr(): "3"}[rep.NewPrimary]
	waitFor(t, "HAProxy to route to the new primary", 10*time.Second, func() bool {
		id, err := serverIDVia(ctx, bind)
		return err == nil && id == wantID
	})
	t.Logf("kill -9 → etcd names the new primary %s: %s (watcher polls every 100 ms); → HAProxy routes there: %s",
		rep.NewPrimary, seen.Sub(killed).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	other := m.Server("db3").Addr()
	if rep.NewPrimary == other {
		other = m.Server("db2").Addr()
	}
	waitFor(t, "etcd to list the remaining replica and not the dead primary", 10*time.Second, func() bool {
		keys, _ := kv.get(ctx, "/myha/lab/replicas/")
		_, dead := keys["/myha/lab/replicas/"+db1.Addr()]
		return keys["/myha/lab/replicas/"+other] == other && !dead
	})
}

// etcdKV reads keys through etcd's v3 JSON gateway, as a watcher would.
type etcdKV struct{ endpoint string }

func (e *etcdKV) get(ctx context.Context, prefix string) (map[string]string, error) {
	end := []byte(prefix)
	end[len(end)-1]++
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte(prefix)), "range_end": base64.StdEncoding.EncodeToString(end)})
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, e.endpoint+"/v3/kv/range", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Kvs []struct{ Key, Value string } `json:"kvs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	keys := map[string]string{}
	for _, kv := range out.Kvs {
		k, _ := base64.StdEncoding.DecodeString(kv.Key)
		v, _ := base64.StdEncoding.DecodeString(kv.Value)
		keys[string(k)] = string(v)
	}
	return keys, nil
}
