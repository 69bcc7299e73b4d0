package lab

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// New starts a lab for a test and removes it when the test ends, pass or
// fail. Without mariadbd the test is skipped, except under CI (CI=true),
// where a missing server is an error: CI must install it.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	if _, err := exec.LookPath(mariadbdPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mariadbd not installed; .ci/run must install mariadb-server")
		}
		t.Skip("mariadbd not installed (apt-get install mariadb-server); skipping a real-server test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// RequireNetns skips a test that needs real hosts when the lab runs on
// loopback (not root, or no iproute2), saying so; under CI (CI=true) it
// fails instead: CI runs as root and must run every test.
func (l *Lab) RequireNetns(t testing.TB) {
	t.Helper()
	if !l.Netns {
		if os.Getenv("CI") != "" {
			t.Fatal("needs network namespaces, and CI must run as root with iproute2: the lab fell back to 127.0.0.1")
		}
		t.Skip("needs network namespaces: run as root with iproute2 (the lab is on 127.0.0.1)")
	}
}
