package failover

import (
	"context"
	"strings"
	"testing"
)

// A hook sees PATH and the documented MYHA_* variables only: never the
// daemon's environment, where MYHA_<CLUSTER>_PASSWORD may live.
func TestHookEnvironmentIsMinimal(t *testing.T) {
	t.Setenv("MYHA_APP1_PASSWORD", "s3cret-admin")
	t.Setenv("MYHA_APP1_REPLICATION_PASSWORD", "s3cret-repl")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cret-cloud")
	r := &Report{Cluster: "app1", Kind: KindFailover, OldPrimary: "db1:3306", NewPrimary: "db2:3306", Epoch: 3, ID: "x"}
	env := append(hookEnv(r, "pre"), "MYHA_APP1_PASSWORD=leak")
	code, out, err := execHook(context.Background(), "/usr/bin/env", nil, env)
	if err != nil || code != 0 {
		t.Fatalf("env: %d %v %s", code, err, out)
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "leak") || strings.Contains(out, "PASSWORD") {
		t.Fatal("a secret reached the hook's environment")
	}
	for _, want := range []string{"PATH=", "MYHA_CLUSTER=app1", "MYHA_PHASE=pre", "MYHA_NEW_PRIMARY=db2:3306", "MYHA_EPOCH=3"} {
		if !strings.Contains(out, want) {
			t.Errorf("hook environment lacks %s", want)
		}
	}
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 1+len(hookEnv(r, "pre")) {
		t.Errorf("hook got %d variables, want PATH plus the %d documented ones", n, len(hookEnv(r, "pre")))
	}
}
