package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Notification defaults.
const (
	DefaultWebhookTimeout    = 5 * time.Second
	DefaultWebhookRetries    = 8
	DefaultWebhookQueue      = 1000
	DefaultWebhookAuthHeader = "Authorization"
	DefaultReportTimeout     = 30 * time.Second
)

// Notify is where the leader sends every state change (primary suspect or
// dead, failover started, blocked or finished, switchover, VIP lease
// moved): a webhook and an MHA-style report_script. Both are optional.
type Notify struct {
	Webhook *Webhook `mapstructure:"webhook"`
	// ReportScript is run after each failover and switchover with MHA's
	// report_script arguments (--orig_master_host, --new_master_host,
	// --new_slave_hosts, --subject, --body).
	ReportScript string `mapstructure:"report_script"`
	// ReportTimeout bounds one run of ReportScript (default 30s).
	ReportTimeout time.Duration `mapstructure:"report_timeout"`
}

// Webhook is a JSON POST of each event to URL, retried with backoff.
type Webhook struct {
	URL string `mapstructure:"url"`
	// AuthHeader names the header that carries the secret in
	// AuthValueFile (default Authorization; write "Bearer <token>" in the
	// file for a bearer token).
	AuthHeader    string `mapstructure:"auth_header"`
	AuthValueFile string `mapstructure:"auth_value_file"`
	// Timeout bounds one POST (default 5s).
	Timeout time.Duration `mapstructure:"timeout"`
	// Retries is how many times a failed POST is tried again, with
	// exponential backoff from 500ms to 30s (default 8: about 1.5 minutes).
	Retries *int `mapstructure:"retries"`
	// Queue is how many events wait for delivery; beyond it the oldest is
	// dropped and counted in myha_notify_dropped_total (default 1000).
	Queue int `mapstructure:"queue"`

	AuthValue Secret `mapstructure:"-"`
}

// resolveNotify applies the defaults and reads the webhook's secret.
func (c *Config) resolveNotify(opt Options) Errors {
	n := &c.Notify
	if n.ReportScript != "" && n.ReportTimeout == 0 {
		n.ReportTimeout = DefaultReportTimeout
	}
	w := n.Webhook
	if w == nil {
		return nil
	}
	if w.AuthHeader == "" {
		w.AuthHeader = DefaultWebhookAuthHeader
	}
	if w.Timeout == 0 {
		w.Timeout = DefaultWebhookTimeout
	}
	if w.Retries == nil {
		r := DefaultWebhookRetries
		w.Retries = &r
	}
	if w.Queue == 0 {
		w.Queue = DefaultWebhookQueue
	}
	if w.AuthValueFile != "" && !opt.Agent {
		b, err := opt.ReadFile(w.AuthValueFile)
		if err != nil {
			return Errors{{Key: "notify.webhook.auth_value_file", Problem: fmt.Sprintf("cannot read %s: %s", w.AuthValueFile, statReason(err))}}
		}
		w.AuthValue = Secret(strings.TrimSpace(string(b)))
		if w.AuthValue == "" {
			return Errors{{Key: "notify.webhook.auth_value_file", Problem: fmt.Sprintf("%s is empty", w.AuthValueFile)}}
		}
	}
	return nil
}

// validateNotify checks the notify section; every problem names its key.
func (c *Config) validateNotify(bad func(key, format string, a ...any)) {
	n := c.Notify
	if n.ReportScript != "" && !filepath.IsAbs(n.ReportScript) {
		bad("notify.report_script", "%q must be an absolute path", n.ReportScript)
	}
	if n.ReportScript == "" && n.ReportTimeout != 0 {
		bad("notify.report_timeout", "set without notify.report_script")
	}
	if n.ReportTimeout < 0 || n.ReportScript != "" && n.ReportTimeout < time.Second {
		bad("notify.report_timeout", "%s is too short (use 1s or more)", n.ReportTimeout)
	}
	w := n.Webhook
	if w == nil {
		return
	}
	u, err := url.Parse(w.URL)
	switch {
	case w.URL == "":
		bad("notify.webhook.url", "missing: write the receiver's URL (http:// or https://)")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		bad("notify.webhook.url", "%q: write an http:// or https:// URL with a host", w.URL)
	case u.User != nil:
		bad("notify.webhook.url", "credentials in the URL would be logged: put the secret in auth_value_file instead")
	}
	if strings.ContainsAny(w.AuthHeader, " :\r\n\t") {
		bad("notify.webhook.auth_header", "%q is not a header name", w.AuthHeader)
	}
	if strings.ContainsAny(w.AuthValue.Value(), "\r\n") {
		bad("notify.webhook.auth_value_file", "the secret spans lines: keep one line")
	}
	if w.Timeout < 100*time.Millisecond || w.Timeout > 5*time.Minute {
		bad("notify.webhook.timeout", "%s: use 100ms to 5m", w.Timeout)
	}
	if r := *w.Retries; r < 0 || r > 100 {
		bad("notify.webhook.retries", "%d: use 0 to 100", r)
	}
	if w.Queue < 1 || w.Queue > 100000 {
		bad("notify.webhook.queue", "%d: use 1 to 100000", w.Queue)
	}
}
