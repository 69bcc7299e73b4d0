package integration

import (
	"os"
	"os/exec"
	"testing"
)

// The shipped alert rules load in Prometheus and fire as their unit tests
// say (promtool from Debian's prometheus package; CI installs it).
func TestAlertRulesWithPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool missing: test/install-deps.sh test installs the prometheus package")
		}
		t.Skip("promtool missing (apt-get install prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "myha-alerts.yml"}, {"test", "rules", "myha-alerts_test.yml"}} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = "../../config/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
