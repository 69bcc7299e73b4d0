package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// Services log at info by default (their start-up line says which monitors
// and clusters they serve); one-shot commands stay quiet unless asked.
func TestDefaultLogLevelPerCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		info bool
	}{
		{[]string{"daemon"}, true},
		{[]string{"agent"}, true},
		{[]string{"check"}, false},
		{[]string{"daemon", "--log-level", "warn"}, false},
		{[]string{"check", "--log-level", "info"}, true},
	} {
		a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
		root := a.rootCommand()
		cmd, rest, err := root.Find(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatal(err)
		}
		if err := root.PersistentPreRunE(cmd, nil); err != nil {
			t.Fatal(err)
		}
		if got := a.log.Enabled(context.Background(), slog.LevelInfo); got != tc.info {
			t.Errorf("%v: info enabled = %v, want %v", tc.args, got, tc.info)
		}
	}
}

// MYHA_CONFIG names the config when --config does not.
func TestConfigFromEnvironment(t *testing.T) {
	env := func(k string) string {
		if k == "MYHA_CONFIG" {
			return "/nonexistent/from-env.yaml"
		}
		return ""
	}
	var out, errb strings.Builder
	code := run(context.Background(), []string{"config", "check"}, strings.NewReader(""), &out, &errb, env)
	if code != 2 || !strings.Contains(errb.String(), "/nonexistent/from-env.yaml") {
		t.Fatalf("MYHA_CONFIG ignored: exit %d %s", code, errb.String())
	}
	errb.Reset()
	run(context.Background(), []string{"config", "check", "--config", "/nonexistent/flag.yaml"}, strings.NewReader(""), &out, &errb, env)
	if !strings.Contains(errb.String(), "/nonexistent/flag.yaml") {
		t.Fatalf("--config must win over MYHA_CONFIG: %s", errb.String())
	}
}
