package main

import (
	"context"
	"io"
	"log/slog"
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
