package daemon

import (
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// The series follow Prometheus naming: myha_ prefix, counters end in
// _total, durations in _seconds, and the state is one-hot per cluster.
func TestMetricsNamesAndOneHotState(t *testing.T) {
	m := newMetrics("v-test")
	m.failovers.WithLabelValues("c", "success").Inc()
	m.probe.WithLabelValues("c").Observe(0.001)
	m.observeCluster("c", StateDead, 2)
	m.observeCluster("c", StateSuspect, 1)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		n := f.GetName()
		seen[n] = f
		if strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") {
			continue
		}
		if !strings.HasPrefix(n, "myha_") {
			t.Errorf("%s: not under myha_", n)
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(n, "_total") {
			t.Errorf("%s: a counter must end in _total", n)
		}
		if f.GetType() == dto.MetricType_HISTOGRAM && !strings.HasSuffix(n, "_seconds") {
			t.Errorf("%s: a duration histogram must end in _seconds", n)
		}
	}
	for _, want := range []string{"myha_build_info", "myha_primary_state", "myha_writable_servers", "myha_failovers_total"} {
		if seen[want] == nil {
			t.Errorf("%s missing", want)
		}
	}
	ones := 0
	for _, mt := range seen["myha_primary_state"].GetMetric() {
		if mt.GetGauge().GetValue() == 1 {
			ones++
			for _, l := range mt.GetLabel() {
				if l.GetName() == "state" && l.GetValue() != string(StateSuspect) {
					t.Errorf("state %s is 1, want only suspect", l.GetValue())
				}
			}
		}
	}
	if ones != 1 || len(seen["myha_primary_state"].GetMetric()) != len(allStates) {
		t.Errorf("myha_primary_state: %d series at 1 of %d, want one-hot over %d states", ones, len(seen["myha_primary_state"].GetMetric()), len(allStates))
	}
	if v := seen["myha_writable_servers"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("myha_writable_servers = %v, want 1", v)
	}
}

// Every myha_ series the shipped alert rules and dashboard use exists.
func TestShippedRulesUseExistingSeries(t *testing.T) {
	m := newMetrics("v")
	m.failovers.WithLabelValues("c", "success")
	m.probe.WithLabelValues("c")
	m.detection.WithLabelValues("c")
	m.up.WithLabelValues("c", "s")
	m.lag.WithLabelValues("c", "s")
	m.observeCluster("c", StateHealthy, 1)
	m.paused.WithLabelValues("c")
	m.maintenance.WithLabelValues("c", "s")
	fams, _ := m.reg.Gather()
	have := map[string]bool{}
	for _, f := range fams {
		have[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, sfx := range []string{"_bucket", "_sum", "_count"} {
				have[f.GetName()+sfx] = true
			}
		}
	}
	for _, file := range []string{"../config/prometheus/myha-alerts.yml", "../config/grafana/myha-dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`myha_[a-z_]+`).FindAllString(string(b), -1) {
			if !have[name] && name != "myha_failover_" {
				t.Errorf("%s uses %s, which the daemon does not export", file, name)
			}
		}
	}
}
