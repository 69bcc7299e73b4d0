package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NotifyConfig is where the leader sends its events (Config.Notify): a
// webhook, a report script, or neither.
type NotifyConfig struct {
	Webhook *WebhookConfig
	// ReportScript is run after each failover and switchover with MHA's
	// report_script arguments; ReportTimeout bounds it.
	ReportScript  string
	ReportTimeout time.Duration
}

// WebhookConfig is a JSON POST of every event. AuthValue is a secret: it
// is sent in the AuthHeader header and never logged or shown.
type WebhookConfig struct {
	URL        string
	AuthHeader string
	AuthValue  string
	Timeout    time.Duration
	Retries    int
	Queue      int
}

// Webhook backoff: the first retry after webhookFirstBackoff, doubling up
// to webhookMaxBackoff.
const (
	webhookFirstBackoff = 500 * time.Millisecond
	webhookMaxBackoff   = 30 * time.Second
)

// notifier delivers events in order from a bounded queue, on a goroutine
// of its own: offering an event never blocks (the decision loop calls
// it), and when the queue is full the oldest waiting event is dropped and
// counted. One event is retried with backoff until delivered or its
// retries are spent; events behind it wait, so a receiver sees them in
// order.
type notifier struct {
	cfg    NotifyConfig
	log    *slog.Logger
	client *http.Client
	// sleep waits d or until ctx ends (false); tests replace it to run
	// the backoff on a fake clock.
	sleep func(ctx context.Context, d time.Duration) bool
	// script runs the report script; nil means os/exec (reportScript).
	script func(ctx context.Context, path string, args []string) error

	mu      sync.Mutex
	queue   []Event
	max     int
	wake    chan struct{}
	dropped prometheus.Counter
	sent    prometheus.Counter
	failed  prometheus.Counter
	depth   prometheus.Gauge
}

func newNotifier(cfg NotifyConfig, log *slog.Logger, reg prometheus.Registerer) *notifier {
	n := &notifier{cfg: cfg, log: log, sleep: sleepCtxOK, max: 1000, wake: make(chan struct{}, 1),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "myha_notify_dropped_total", Help: "Events dropped because the notification queue was full (the oldest waiting is dropped)."}),
		sent:    prometheus.NewCounter(prometheus.CounterOpts{Name: "myha_notify_sent_total", Help: "Events the webhook accepted (2xx)."}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "myha_notify_failed_total", Help: "Events given up on after every webhook retry failed."}),
		depth:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "myha_notify_queue_length", Help: "Events waiting for delivery."}),
	}
	if w := cfg.Webhook; w != nil {
		n.max = max(w.Queue, 1)
		tr := &http.Transport{DialContext: (&net.Dialer{Timeout: w.Timeout}).DialContext, TLSHandshakeTimeout: w.Timeout,
			ResponseHeaderTimeout: w.Timeout, MaxIdleConns: 2, IdleConnTimeout: time.Minute, Proxy: http.ProxyFromEnvironment}
		n.client = &http.Client{Transport: tr, Timeout: w.Timeout,
			// A redirect could carry the secret header elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if reg != nil {
		reg.MustRegister(n.dropped, n.sent, n.failed, n.depth)
	}
	return n
}

// offer queues an event; it never blocks.
func (n *notifier) offer(ev Event) {
	n.mu.Lock()
	if len(n.queue) >= n.max {
		dropped := n.queue[0]
		n.queue = n.queue[1:]
		n.dropped.Inc()
		n.log.Warn("notification queue full: dropped the oldest event", "kind", dropped.Kind, "cluster", dropped.Cluster, "seq", dropped.Seq)
	}
	n.queue = append(n.queue, ev)
	n.depth.Set(float64(len(n.queue)))
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) next() (Event, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.queue) == 0 {
		return Event{}, false
	}
	ev := n.queue[0]
	n.queue = n.queue[1:]
	n.depth.Set(float64(len(n.queue)))
	return ev, true
}

// run delivers queued events until ctx ends.
func (n *notifier) run(ctx context.Context) {
	for {
		for {
			ev, ok := n.next()
			if !ok {
				break
			}
			n.deliver(ctx, ev)
			if ctx.Err() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
	}
}

func (n *notifier) deliver(ctx context.Context, ev Event) {
	if n.cfg.Webhook != nil {
		n.post(ctx, ev)
	}
	if n.cfg.ReportScript != "" && ev.report() {
		n.runReport(ctx, ev)
	}
}

// post sends one event, retrying with backoff.
func (n *notifier) post(ctx context.Context, ev Event) {
	w := n.cfg.Webhook
	body, err := json.Marshal(ev)
	if err != nil {
		n.log.Error("notification: cannot encode the event", "kind", ev.Kind, "err", err)
		return
	}
	back := webhookFirstBackoff
	for attempt := 0; ; attempt++ {
		err := n.postOnce(ctx, body)
		if err == nil {
			n.sent.Inc()
			return
		}
		if attempt >= w.Retries || ctx.Err() != nil {
			n.failed.Inc()
			n.log.Error("notification webhook: giving up on an event", "kind", ev.Kind, "cluster", ev.Cluster, "seq", ev.Seq, "attempts", attempt+1, "err", err)
			return
		}
		n.log.Warn("notification webhook failed; will retry", "kind", ev.Kind, "cluster", ev.Cluster, "seq", ev.Seq, "attempt", attempt+1, "in", back, "err", err)
		if !n.sleep(ctx, back) {
			return
		}
		back = min(2*back, webhookMaxBackoff)
	}
}

// postOnce makes one bounded POST; a 2xx answer is success. Errors name
// the URL's host, never the secret header.
func (n *notifier) postOnce(ctx context.Context, body []byte) error {
	w := n.cfg.Webhook
	pctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "myha-notify")
	if w.AuthValue != "" {
		req.Header.Set(w.AuthHeader, w.AuthValue)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST to %s: %w", req.URL.Host, unwrapURLError(err))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST to %s: answered %s", req.URL.Host, resp.Status)
	}
	return nil
}

// unwrapURLError drops net/http's *url.Error wrapper, which repeats the
// whole URL (with its query, which may hold a token) in the message.
func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		if _, isURL := err.(interface{ Timeout() bool }); isURL {
			return u.Unwrap()
		}
	}
	return err
}

// sleepCtxOK waits d; false when ctx ended first.
func sleepCtxOK(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
