package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/myha/myha/topology"
)

// The leader publishes each cluster's primary and healthy replicas to etcd,
// for confd (or any watcher) to rewrite HAProxy's configuration — the seed
// deployment many shops run. Keys, under the configured prefix:
//
//	<prefix>/<cluster>/primary                  host:port
//	<prefix>/<cluster>/replicas/<host:port>     host:port
//
// One transaction replaces a cluster's keys, so a watcher never sees a
// half-written topology. Keys carry a lease the leader keeps alive: when no
// monitor leads for longer than the TTL they vanish, and consumers stop
// routing to a primary nobody watches. It speaks etcd's v3 JSON gateway
// (POST /v3/kv/txn, /v3/lease/grant, /v3/lease/keepalive) over net/http:
// no gRPC client. Publishing never blocks probing: the leader hands the
// desired state to a goroutine that coalesces it and retries.

// EtcdConfig is where and how to publish.
type EtcdConfig struct {
	Endpoints []string
	Prefix    string
	TTL       time.Duration // 0: no lease
	Timeout   time.Duration
}

// Published is one cluster's topology as published.
type Published struct {
	Primary  string
	Replicas []string
}

func (p Published) same(o Published) bool {
	return p.Primary == o.Primary && slices.Equal(p.Replicas, o.Replicas)
}

type publisher struct {
	cfg    EtcdConfig
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	want    map[string]Published // desired, per cluster
	fedAt   time.Time            // last time the leader fed it
	wake    chan struct{}
	done    map[string]Published // as written
	lease   int64
	renewed time.Time
}

func newPublisher(cfg EtcdConfig, log *slog.Logger, now func() time.Time) *publisher {
	return &publisher{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, log: log, now: now,
		want: map[string]Published{}, done: map[string]Published{}, wake: make(chan struct{}, 1)}
}

// offer records what the leader wants published for a cluster. It never
// blocks.
func (p *publisher) offer(cluster string, pub Published) {
	slices.Sort(pub.Replicas)
	p.mu.Lock()
	p.fedAt = p.now()
	changed := !p.want[cluster].same(pub)
	p.want[cluster] = pub
	p.mu.Unlock()
	if changed {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// run writes what changed and keeps the lease alive while it is being fed
// (while this monitor leads); it returns when ctx ends.
func (p *publisher) run(ctx context.Context) {
	tick := time.NewTicker(p.renewEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-tick.C:
		}
		p.sync(ctx)
	}
}

func (p *publisher) renewEvery() time.Duration {
	if p.cfg.TTL > 0 {
		return p.cfg.TTL / 3
	}
	return 5 * time.Second // retry failed writes
}

// sync makes etcd match what the leader last offered. A monitor that no
// longer leads (not fed for a renewal period) stops renewing: its lease
// lapses and the new leader's writes take over.
func (p *publisher) sync(ctx context.Context) {
	p.mu.Lock()
	if p.now().Sub(p.fedAt) > p.renewEvery()+p.cfg.Timeout {
		p.lease, p.done = 0, map[string]Published{}
		p.mu.Unlock()
		return
	}
	want := make(map[string]Published, len(p.want))
	for k, v := range p.want {
		want[k] = v
	}
	lease, renewed := p.lease, p.renewed
	p.mu.Unlock()

	if p.cfg.TTL > 0 {
		if lease != 0 && p.now().Sub(renewed) >= p.renewEvery() {
			if err := p.keepAlive(ctx, lease); err != nil {
				p.log.Warn("etcd: lease renewal failed; granting a new one", "err", err)
				lease = 0
			} else {
				renewed = p.now()
			}
		}
		if lease == 0 {
			id, err := p.grant(ctx)
			if err != nil {
				p.log.Warn("etcd: cannot grant a lease; will retry", "err", err)
				return
			}
			lease, renewed = id, p.now()
			p.mu.Lock()
			p.done = map[string]Published{} // rewrite everything under the new lease
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.lease, p.renewed = lease, renewed
		p.mu.Unlock()
	}
	for cluster, pub := range want {
		p.mu.Lock()
		done, ok := p.done[cluster]
		p.mu.Unlock()
		if ok && done.same(pub) {
			continue
		}
		if err := p.write(ctx, cluster, pub, lease); err != nil {
			p.log.Warn("etcd: cannot publish the topology; will retry", "cluster", cluster, "err", err)
			continue
		}
		p.mu.Lock()
		p.done[cluster] = pub
		p.mu.Unlock()
		p.log.Info("etcd: published", "cluster", cluster, "primary", pub.Primary, "replicas", pub.Replicas)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// write replaces the cluster's keys in one transaction: the keys read
// under its directory that the new topology lacks are deleted, the rest
// put (etcd refuses a transaction that deletes a range and puts inside it).
func (p *publisher) write(ctx context.Context, cluster string, pub Published, lease int64) error {
	dir := p.cfg.Prefix + "/" + cluster + "/"
	var have struct {
		Kvs []struct {
			Key string `json:"key"`
		} `json:"kvs"`
	}
	if err := p.post(ctx, "/v3/kv/range", map[string]any{"key": b64(dir), "range_end": b64(prefixEnd(dir)), "keys_only": true}, &have); err != nil {
		return err
	}
	type put struct {
		Key   string `json:"key"`
		Value string `json:"value"`
		Lease string `json:"lease,omitempty"`
	}
	leaseStr := ""
	if lease != 0 {
		leaseStr = strconv.FormatInt(lease, 10)
	}
	keep := map[string]bool{}
	var ops []map[string]any
	if pub.Primary != "" {
		keep[b64(dir+"primary")] = true
		ops = append(ops, map[string]any{"request_put": put{b64(dir + "primary"), b64(pub.Primary), leaseStr}})
	}
	for _, r := range pub.Replicas {
		keep[b64(dir+"replicas/"+r)] = true
		ops = append(ops, map[string]any{"request_put": put{b64(dir + "replicas/" + r), b64(r), leaseStr}})
	}
	for _, kv := range have.Kvs {
		if !keep[kv.Key] {
			ops = append(ops, map[string]any{"request_delete_range": map[string]string{"key": kv.Key}})
		}
	}
	return p.post(ctx, "/v3/kv/txn", map[string]any{"success": ops}, nil)
}

// prefixEnd is the range end covering every key that starts with s.
func prefixEnd(s string) string {
	b := []byte(s)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00"
}

func (p *publisher) grant(ctx context.Context) (int64, error) {
	var out struct {
		ID    string `json:"ID"`
		Error string `json:"error"`
	}
	if err := p.post(ctx, "/v3/lease/grant", map[string]any{"TTL": int64(p.cfg.TTL / time.Second)}, &out); err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(out.ID, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("lease grant answered no ID (%q)", out.ID)
	}
	return id, nil
}

func (p *publisher) keepAlive(ctx context.Context, lease int64) error {
	var out struct {
		Result struct {
			TTL string `json:"TTL"`
		} `json:"result"`
	}
	if err := p.post(ctx, "/v3/lease/keepalive", map[string]any{"ID": strconv.FormatInt(lease, 10)}, &out); err != nil {
		return err
	}
	if ttl, _ := strconv.ParseInt(out.Result.TTL, 10, 64); ttl <= 0 {
		return fmt.Errorf("lease %d expired", lease)
	}
	return nil
}

// post sends one JSON request, trying each endpoint in turn.
func (p *publisher) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var errs []string
	for _, ep := range p.cfg.Endpoints {
		rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, strings.TrimSuffix(ep, "/")+path, bytes.NewReader(b))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := p.client.Do(req)
		if err != nil {
			cancel()
			errs = append(errs, err.Error())
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cancel()
		if err != nil || resp.StatusCode != http.StatusOK {
			errs = append(errs, fmt.Sprintf("%s: %d %s", ep, resp.StatusCode, strings.TrimSpace(string(data))))
			continue
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s%s: %v", ep, path, err)
			}
		}
		return nil
	}
	return fmt.Errorf("etcd %s: %s", path, strings.Join(errs, "; "))
}

// publishedTopology is what the leader publishes for a cluster: the agreed
// primary (raft's, whatever this probe saw of it: a dead primary stays
// published until a failover agrees on another, so consumers never route
// writes to a server the monitors have not agreed on), and the replicas
// that replicate from it with both threads running within maxLag.
func publishedTopology(snap *topology.Snapshot, agreed string, maxLag time.Duration) Published {
	pub := Published{Primary: agreed}
	for i := range snap.Servers {
		v := &snap.Servers[i]
		c, ok := v.PrimaryConn()
		if !ok || !v.Reachable || v.Spec.Address == agreed || v.Source != agreed || !c.IORunning() || !c.SQLRunning {
			continue
		}
		if c.LagSeconds == nil || maxLag > 0 && time.Duration(*c.LagSeconds)*time.Second > maxLag {
			continue
		}
		pub.Replicas = append(pub.Replicas, v.Spec.Address)
	}
	return pub
}
