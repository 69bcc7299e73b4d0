package failover

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two configs that both call their cluster "lab" must never share records:
// the second is refused with an error naming both server lists.
func TestBindRefusesAnotherClustersRecords(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	if err := s.Bind("lab", []string{"10.0.0.1:3306", "10.0.0.2:3306"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("lab", time.Now()); err != nil {
		t.Fatal(err)
	}
	err := s.Bind("lab", []string{"192.168.1.5:3306", "192.168.1.6:3306"})
	if !errors.Is(err, ErrForeignState) || !strings.Contains(err.Error(), "10.0.0.1:3306, 10.0.0.2:3306") ||
		!strings.Contains(err.Error(), "192.168.1.5:3306") || !strings.Contains(err.Error(), "state_dir of its own") {
		t.Fatalf("foreign records not refused clearly: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(s.Dir, "lab", "cluster.json"))
	if !strings.Contains(string(b), "10.0.0.1:3306") {
		t.Fatalf("refusal changed the mark: %s", b)
	}
	// The same cluster with a server replaced keeps its records.
	if err := s.Bind("lab", []string{"10.0.0.1:3306", "10.0.0.3:3306"}); err != nil {
		t.Fatalf("a replaced server is the same cluster: %v", err)
	}
	if err := s.Bind("lab", []string{"10.0.0.3:3306"}); err != nil {
		t.Fatalf("the mark follows the config: %v", err)
	}
}
