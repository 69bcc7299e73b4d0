package daemon

import (
	"testing"
	"time"
)

func TestLeaseHandover(t *testing.T) {
	var tr leaseTracker
	t0 := time.Unix(1000, 0)
	never := func(string, time.Time) bool { return false }
	if l := tr.next("c", "db1", 1, 3*time.Second, t0, never); l.Primary != "db1" || l.WaitMS != 0 {
		t.Fatalf("first lease %+v", l)
	}
	// The primary changes 1 s after the last renewal of db1: db2 must wait
	// the 2 s db1's lease may still run.
	l := tr.next("c", "db2", 2, 3*time.Second, t0.Add(time.Second), never)
	if l.Primary != "db2" || l.WaitMS != 2000 {
		t.Fatalf("handover lease %+v, want a 2000 ms wait", l)
	}
	if l := tr.next("c", "db2", 2, 3*time.Second, t0.Add(2500*time.Millisecond), never); l.WaitMS != 500 {
		t.Fatalf("wait must shrink: %+v", l)
	}
	// Once db1's agent confirms the release, no more waiting.
	var tr2 leaseTracker
	tr2.next("c", "db1", 1, 3*time.Second, t0, never)
	released := func(s string, since time.Time) bool { return s == "db1" }
	if l := tr2.next("c", "db2", 2, 3*time.Second, t0.Add(100*time.Millisecond), released); l.WaitMS != 0 {
		t.Fatalf("released: %+v", l)
	}
	if l := tr.next("c", "db2", 2, 3*time.Second, t0.Add(4*time.Second), never); l.WaitMS != 0 {
		t.Fatalf("after expiry: %+v", l)
	}
}
