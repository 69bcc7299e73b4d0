package main

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/myha/myha/capture"
	"github.com/myha/myha/config"
	"github.com/myha/myha/daemon"
	"github.com/myha/myha/failover"
)

// captureHolds asks every monitor's capture what it holds (in parallel,
// each bounded), for myha check's capture check.
func captureHolds(ctx context.Context, cfg *config.Config, c config.Cluster) []failover.CaptureHold {
	if !c.Capture.Enabled {
		return nil
	}
	out := make([]failover.CaptureHold, len(cfg.Monitors))
	var wg sync.WaitGroup
	for i, m := range cfg.Monitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ep := net.JoinHostPort(m.Address, strconv.Itoa(c.Capture.Port))
			h := failover.CaptureHold{Monitor: m.Name, Source: ep}
			pos, err := capture.QueryPosition(ctx, ep, c.ReplicationUser, c.ReplicationPassword.Value(), daemon.CaptureClientTLS(clusterSpec(c).TLS), 2*time.Second)
			if err != nil {
				h.Error = err.Error()
			} else {
				h.Position = pos.String()
			}
			out[i] = h
		}()
	}
	wg.Wait()
	return slices.Clip(out)
}
