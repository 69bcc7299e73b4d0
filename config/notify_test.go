package config

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// MHA's report_script becomes notify.report_script, and the YAML written
// for it loads back with the same path.
func TestImportMHAReportScript(t *testing.T) {
	in := strings.Replace(mhaConf, "ssh_user=root\n", "ssh_user=root\nreport_script=/usr/local/bin/send_report\n", 1)
	c, notes, err := ImportMHA(in, "app1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Notify.ReportScript != "/usr/local/bin/send_report" {
		t.Fatalf("report_script not carried over: %+v", c.Notify)
	}
	if !strings.Contains(strings.ReplaceAll(fmtNotes(notes), "\n", " "), "notify.report_script") {
		t.Errorf("no note about report_script: %v", notes)
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, c, true); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(buf.Bytes(), Options{})
	if err != nil {
		t.Fatalf("imported YAML does not load: %v\n%s", err, buf.String())
	}
	if back.Notify.ReportScript != "/usr/local/bin/send_report" || back.Notify.ReportTimeout != DefaultReportTimeout {
		t.Fatalf("round trip: %+v", back.Notify)
	}
}

func fmtNotes(ns []ImportNote) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}

const notifyBase = "clusters:\n  - name: c\n    user: u\n    password: p\n    replication_user: r\n    replication_password: rp\n    servers:\n      - address: 10.0.0.1:3306\n"

// The webhook's settings get defaults; its secret comes from a file and
// never prints; every bad value is an error naming its key.
func TestNotifyConfig(t *testing.T) {
	files := map[string]string{"/etc/myha/hook.secret": "Bearer s3cr3t-hook\n", "/etc/myha/empty": "\n"}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, os.ErrNotExist
	}
	c, err := Parse([]byte("notify:\n  webhook:\n    url: https://hooks.example.com/myha\n    auth_value_file: /etc/myha/hook.secret\n"+notifyBase), Options{ReadFile: read})
	if err != nil {
		t.Fatal(err)
	}
	w := c.Notify.Webhook
	if w.AuthHeader != "Authorization" || w.AuthValue.Value() != "Bearer s3cr3t-hook" || w.Timeout != DefaultWebhookTimeout || *w.Retries != DefaultWebhookRetries || w.Queue != DefaultWebhookQueue {
		t.Fatalf("defaults: %+v", w)
	}
	if s := w.AuthValue.String(); strings.Contains(s, "s3cr3t") {
		t.Fatalf("the secret prints: %s", s)
	}
	for _, c := range []struct{ yaml, key, says string }{
		{"notify:\n  webhook:\n    timeout: 5s\n", "notify.webhook.url", "missing"},
		{"notify:\n  webhook:\n    url: ftp://x/y\n", "notify.webhook.url", "http"},
		{"notify:\n  webhook:\n    url: https://user:pw@x/y\n", "notify.webhook.url", "auth_value_file"},
		{"notify:\n  webhook:\n    url: https://x/y\n    timeout: 10\n", "notify.webhook.timeout", ""},
		{"notify:\n  webhook:\n    url: https://x/y\n    timeout: 1ms\n", "notify.webhook.timeout", "100ms"},
		{"notify:\n  webhook:\n    url: https://x/y\n    retries: -1\n", "notify.webhook.retries", "0 to 100"},
		{"notify:\n  webhook:\n    url: https://x/y\n    queue: 1000000\n", "notify.webhook.queue", "1 to 100000"},
		{"notify:\n  webhook:\n    url: https://x/y\n    auth_header: \"X Bad\"\n", "notify.webhook.auth_header", "header name"},
		{"notify:\n  webhook:\n    url: https://x/y\n    auth_value_file: /nope\n", "notify.webhook.auth_value_file", "no such file"},
		{"notify:\n  webhook:\n    url: https://x/y\n    auth_value_file: /etc/myha/empty\n", "notify.webhook.auth_value_file", "empty"},
		{"notify:\n  webhook:\n    url: https://x/y\n    secret: abc\n", "secret", ""},
		{"notify:\n  report_script: relative.sh\n", "notify.report_script", "absolute"},
		{"notify:\n  report_timeout: 5s\n", "notify.report_timeout", "without"},
	} {
		_, err := Parse([]byte(c.yaml+notifyBase), Options{ReadFile: read})
		var es Errors
		if !errors.As(err, &es) {
			t.Errorf("%q: no error (%v)", c.yaml, err)
			continue
		}
		if !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%q: %v; want it to name %s and say %q", c.yaml, err, c.key, c.says)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the secret in an error: %v", err)
		}
	}
}
