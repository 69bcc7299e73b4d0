package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Live-update bounds (GET /api/events). A page holds one stream; a monitor
// serves at most eventsMaxClients of them, each with a buffer of one
// pending payload per event name (a newer state replaces an unsent older
// one, so a slow reader costs memory for one state, never a queue). A
// write that does not complete in eventsWriteTimeout ends the stream, a
// comment every eventsHeartbeat lets both ends notice a dead connection,
// and every stream ends after eventsLifetime (the page reconnects).
const (
	eventsMaxClients   = 32
	eventsTick         = 100 * time.Millisecond
	eventsHeartbeat    = 10 * time.Second
	eventsWriteTimeout = 5 * time.Second
	eventsLifetime     = 30 * time.Minute
)

// sseEvent is one named payload; data is JSON on one line.
type sseEvent struct {
	name string
	data []byte
}

// changeKey says what may have changed since it was last read. Urgent
// changes (a verdict, a raft decision, a new leader, an event) are pushed
// at the next tick; routine ones (a cluster's new probe) are paced by what
// building the payloads costs: at a thousand clusters a cluster probes
// every millisecond, and rebuilding a 4 MB overview every tick cost a
// third of a core for one open page.
type changeKey struct{ urgent, routine string }

// routineCostFactor paces routine rebuilds: building the payloads takes at
// most 1/routineCostFactor of the hub's time; maxRoutineGap bounds how
// stale a routine change may get.
const (
	routineCostFactor = 20
	maxRoutineGap     = 2 * time.Second
)

// eventHub fans the monitor's state out to the open streams. It samples a
// cheap change key every tick and builds the payloads only when the key
// moved, and only while somebody listens: with no client it runs nothing.
type eventHub struct {
	key        func() changeKey  // changes whenever a payload may have
	produce    func() []sseEvent // the current payloads
	log        *slog.Logger
	maxClients int
	tick       time.Duration
	heartbeat  time.Duration
	writeLimit time.Duration
	lifetime   time.Duration

	mu      sync.Mutex
	clients map[*sseClient]struct{}
	last    map[string][]byte // what was last sent, per event name
	order   []string          // event names in first-seen order
	stop    chan struct{}     // closes the sampling loop; nil when none runs
}

func newEventHub(log *slog.Logger, key func() changeKey, produce func() []sseEvent) *eventHub {
	return &eventHub{key: key, produce: produce, log: log, maxClients: eventsMaxClients, tick: eventsTick,
		heartbeat: eventsHeartbeat, writeLimit: eventsWriteTimeout, lifetime: eventsLifetime,
		clients: map[*sseClient]struct{}{}, last: map[string][]byte{}}
}

// sseClient is one stream's pending payloads: at most one per event name.
type sseClient struct {
	notify  chan struct{} // capacity 1: "something is pending"
	mu      sync.Mutex
	pending map[string][]byte
	order   []string
}

func (c *sseClient) offer(ev sseEvent) {
	c.mu.Lock()
	if _, ok := c.pending[ev.name]; !ok {
		c.order = append(c.order, ev.name)
	}
	c.pending[ev.name] = ev.data
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *sseClient) take() []sseEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]sseEvent, 0, len(c.order))
	for _, n := range c.order {
		out = append(out, sseEvent{n, c.pending[n]})
	}
	c.pending, c.order = map[string][]byte{}, nil
	return out
}

// join registers a stream, starting the sampling loop for the first one.
// It refuses beyond maxClients.
func (h *eventHub) join() (*sseClient, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.maxClients {
		return nil, false
	}
	c := &sseClient{notify: make(chan struct{}, 1), pending: map[string][]byte{}}
	h.clients[c] = struct{}{}
	for _, n := range h.order {
		c.offer(sseEvent{n, h.last[n]})
	}
	if h.stop == nil {
		h.stop = make(chan struct{})
		go h.run(h.stop)
	}
	return c, true
}

// leave unregisters a stream; the last one out stops the loop and drops
// the cached payloads (a later first client must not see stale state).
func (h *eventHub) leave(c *sseClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	if len(h.clients) == 0 && h.stop != nil {
		close(h.stop)
		h.stop = nil
		h.last, h.order = map[string][]byte{}, nil
	}
}

func (h *eventHub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *eventHub) run(stop chan struct{}) {
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var lastKey changeKey
	var built time.Time    // when the payloads were last built
	var cost time.Duration // what building them took
	first := true
	for {
		// A panic while reading the state is logged and the next tick
		// tries again; the streams stay open.
		var k changeKey
		if !guard(h.log, "live events: reading the state", func() { k = h.key() }) && (first || k != lastKey) &&
			(first || k.urgent != lastKey.urgent || time.Since(built) >= routineGap(h.tick, cost)) {
			var evs []sseEvent
			start := time.Now()
			if !guard(h.log, "live events: building the state", func() { evs = h.produce() }) {
				first, lastKey, built, cost = false, k, time.Now(), time.Since(start)
				h.publish(evs, stop)
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// routineGap is how long a routine change waits after the last build.
func routineGap(tick, cost time.Duration) time.Duration {
	return min(max(tick, routineCostFactor*cost), maxRoutineGap)
}

// publish hands every payload that differs from the last one sent to every
// stream. A loop already told to stop publishes nothing (a new loop may
// have started for new clients).
func (h *eventHub) publish(evs []sseEvent, stop chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop != stop {
		return
	}
	for _, ev := range evs {
		old, seen := h.last[ev.name]
		if seen && bytes.Equal(old, ev.data) {
			continue
		}
		if !seen {
			h.order = append(h.order, ev.name)
		}
		h.last[ev.name] = ev.data
		for c := range h.clients {
			c.offer(ev)
		}
	}
}

// serve streams events as text/event-stream until the client goes, a write
// times out, or the stream's lifetime ends.
func (h *eventHub) serve(w http.ResponseWriter, r *http.Request) {
	c, ok := h.join()
	if !ok {
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, fmt.Sprintf("too many live pages on this monitor (%d): close one, or read GET /api/v1/clusters", h.maxClients), nil, nil)
		return
	}
	defer h.leave(c)
	// Every write pushes the connection's write deadline forward, so the
	// API server's WriteTimeout bounds one write, not the whole stream.
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(h.writeLimit)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) {
		return
	}
	beat := time.NewTicker(h.heartbeat)
	defer beat.Stop()
	end := time.NewTimer(h.lifetime)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-beat.C:
			if !write([]byte(": ping\n\n")) {
				return
			}
		case <-c.notify:
			var b bytes.Buffer
			for _, ev := range c.take() {
				fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", ev.name, ev.data)
			}
			if !write(b.Bytes()) {
				return
			}
		}
	}
}
