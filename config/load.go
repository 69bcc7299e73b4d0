package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// DefaultPaths are searched, in order, when no --config is given.
var DefaultPaths = []string{"./myha.yaml", "/etc/myha/myha.yaml"}

// Options are the outside inputs of Load, passed in so loading has no hidden
// dependency on the process (tests pass their own environment).
type Options struct {
	// Getenv looks up environment overrides; nil means no overrides.
	Getenv func(string) string
	// ReadFile reads password files; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// Agent loads the config for `myha agent`, which never reads the API
	// tokens: a database host need not hold them.
	Agent bool
	// ThroughMonitors loads the config for a command that only reads
	// through the monitors' API (topology --api, status, history
	// --daemon): the database passwords may be left out (and are not
	// read when present), and security.ca_file may stand alone, so an
	// operator's laptop holds no database secret. The daemon, the agent
	// and every command that connects to the servers load without it.
	ThroughMonitors bool
}

// Error is a configuration problem, one line, naming the key and what to do.
type Error struct {
	File    string
	Line    int // where the key (or the syntax error) is in the file; 0 if unknown
	Col     int
	Key     string
	Problem string
}

// Error renders "file:line:col: key: problem" on one line, the form
// editors jump to.
func (e *Error) Error() string {
	where := e.File
	switch {
	case e.Line > 0 && where == "":
		where = fmt.Sprintf("line %d, column %d", e.Line, e.Col)
	case e.Line > 0:
		where += fmt.Sprintf(":%d:%d", e.Line, e.Col)
	}
	if e.Key != "" {
		if where != "" {
			where += ": "
		}
		where += e.Key
	}
	if where == "" {
		return e.Problem
	}
	return where + ": " + e.Problem
}

// Errors is every problem found in one file, so the user fixes them in one go.
type Errors []*Error

// Error puts each problem on its own line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Find returns the first existing path of explicit (if set) or DefaultPaths.
func Find(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", &Error{File: explicit, Problem: "cannot read the config file: " + statReason(err)}
		}
		return explicit, nil
	}
	for _, p := range DefaultPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", &Error{Problem: "no config file: pass --config FILE or create " + strings.Join(DefaultPaths, " or ")}
}

func statReason(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

// LoadFile reads, defaults and validates a YAML config file.
func LoadFile(path string, opt Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Problem: "cannot read the config file: " + statReason(err)}
	}
	cfg, err := Parse(data, opt)
	if err != nil {
		var es Errors
		if errors.As(err, &es) {
			for _, e := range es {
				e.File = path
			}
			return nil, es
		}
		return nil, &Error{File: path, Problem: err.Error()}
	}
	return cfg, nil
}

// Parse decodes YAML config text with a fresh viper instance (no global
// state, so a reload never sees the old file), rejects unknown keys, applies
// defaults, secrets from files and the environment, and validates.
func Parse(data []byte, opt Options) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		e := &Error{Problem: yamlProblem(oneLine(err.Error()))}
		if p, ok := syntaxPosition(data); ok {
			e.Line, e.Col = p.line, p.col
		}
		return nil, Errors{e}
	}
	var cfg Config
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.ZeroFields = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(durationNeedsUnit, dc.DecodeHook)
	})
	if err != nil {
		errs := decodeErrors(err)
		placeErrors(errs, data)
		return nil, errs
	}
	if opt.ReadFile == nil {
		opt.ReadFile = os.ReadFile
	}
	if errs := cfg.resolve(opt); len(errs) > 0 {
		placeErrors(errs, data)
		return nil, errs
	}
	if errs := cfg.validate(opt.ThroughMonitors); len(errs) > 0 {
		placeErrors(errs, data)
		return nil, errs
	}
	return &cfg, nil
}

// resolve applies defaults, password files and environment overrides.
func (c *Config) resolve(opt Options) Errors {
	var errs Errors
	if c.StateDir == "" {
		c.StateDir, c.StateDirDefaulted = DefaultStateDir, true
	}
	for i := range c.Monitors {
		m := &c.Monitors[i]
		if m.GossipPort == 0 {
			m.GossipPort = DefaultGossipPort
		}
		if m.RaftPort == 0 {
			m.RaftPort = DefaultRaftPort
		}
		if m.APIPort == 0 {
			m.APIPort = DefaultAPIPort
		}
	}
	if c.Agents.HTTPPort == 0 {
		c.Agents.HTTPPort = DefaultAgentHTTPPort
	}
	if c.Agents.GossipPort == 0 {
		c.Agents.GossipPort = DefaultGossipPort
	}
	if len(c.Etcd.Endpoints) > 0 {
		if c.Etcd.Prefix == "" {
			c.Etcd.Prefix = DefaultEtcdPrefix
		}
		if c.Etcd.TTL == nil {
			ttl := DefaultEtcdTTL
			c.Etcd.TTL = &ttl
		}
		if c.Etcd.Timeout == 0 {
			c.Etcd.Timeout = DefaultEtcdTimeout
		}
	}
	if c.Security.GossipLabel == "" {
		c.Security.GossipLabel = DefaultGossipLabel
	}
	for _, f := range []struct {
		dst  *Secret
		path string
		key  string
	}{{&c.Security.GossipKey, c.Security.GossipKeyFile, "security.gossip_key_file"}, {&c.Security.APIToken, c.Security.APITokenFile, "security.api_token_file"},
		{&c.Security.APIReadToken, c.Security.APIReadTokenFile, "security.api_read_token_file"}} {
		if f.path == "" || opt.Agent && f.dst != &c.Security.GossipKey {
			continue
		}
		b, err := opt.ReadFile(f.path)
		if err != nil {
			errs = append(errs, &Error{Key: f.key, Problem: fmt.Sprintf("cannot read %s: %s", f.path, statReason(err))})
			continue
		}
		*f.dst = Secret(strings.TrimSpace(string(b)))
	}
	errs = append(errs, c.resolveNotify(opt)...)
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		key := fmt.Sprintf("clusters[%d]", i)
		if cl.ConnectTimeout == 0 {
			cl.ConnectTimeout = DefaultConnectTimeout
		}
		if cl.ReadTimeout == 0 {
			cl.ReadTimeout = DefaultReadTimeout
		}
		if cl.CheckInterval == 0 {
			cl.CheckInterval = DefaultCheckInterval
		}
		if cl.Probe == "" {
			cl.Probe = "select"
		}
		errs = append(errs, resolveTLS(key, &cl.TLS, opt)...)
		if cl.Failover.Fencing == "" {
			cl.Failover.Fencing = "require"
		}
		if cl.Failover.MaxLag == 0 {
			cl.Failover.MaxLag = DefaultMaxLag
		}
		if cl.Failover.CatchupTimeout == 0 {
			cl.Failover.CatchupTimeout = DefaultCatchupTimeout
		}
		if cl.Failover.MaxBacklog == 0 {
			cl.Failover.MaxBacklog = DefaultMaxBacklog
		}
		if cl.Failover.SemiSync == "" {
			cl.Failover.SemiSync = "auto"
		}
		if cl.Failover.BlockPeriod == 0 {
			cl.Failover.BlockPeriod = DefaultBlockPeriod
		}
		if cl.Failover.KillGrace == 0 {
			cl.Failover.KillGrace = DefaultKillGrace
		}
		if cl.Failover.HookTimeout == 0 {
			cl.Failover.HookTimeout = DefaultHookTimeout
		}
		if cl.Failover.DownAfter == 0 {
			cl.Failover.DownAfter = DefaultDownAfter
		}
		c.captureDefaults(cl)
		errs = append(errs, c.resolveCaptureTLS(key, cl, opt)...)
		if v := cl.VIP; v != nil {
			if v.Method == "" {
				v.Method = "agent"
			}
			if v.Lease == 0 {
				v.Lease = DefaultVIPLease
			}
		}
		for _, s := range []struct {
			val  *Secret
			file string
			name string
		}{
			{&cl.Password, cl.PasswordFile, "password"},
			{&cl.ReplicationPassword, cl.ReplicationPasswordFile, "replication_password"},
		} {
			if opt.ThroughMonitors {
				*s.val = "" // never read, never held: the command goes through the monitors
				continue
			}
			if s.file != "" {
				if *s.val != "" {
					errs = append(errs, &Error{Key: key + "." + s.name, Problem: "set both " + s.name + " and " + s.name + "_file; keep one"})
					continue
				}
				b, err := opt.ReadFile(s.file)
				if err != nil {
					errs = append(errs, &Error{Key: key + "." + s.name + "_file", Problem: fmt.Sprintf("cannot read %s: %s", s.file, statReason(err))})
					continue
				}
				*s.val = Secret(strings.TrimRight(string(b), "\r\n"))
			}
			if opt.Getenv != nil {
				if env := opt.Getenv(EnvName(cl.Name, s.name)); env != "" {
					*s.val = Secret(env)
				}
			}
		}
	}
	return errs
}

var nonAlnum = regexp.MustCompile(`[^A-Z0-9]+`)

// EnvName is the environment variable that overrides a cluster's secret:
// MYHA_<CLUSTER>_<KEY>, upper case, other characters as underscores
// (cluster "app-1", key "password" → MYHA_APP_1_PASSWORD).
func EnvName(cluster, key string) string {
	return "MYHA_" + nonAlnum.ReplaceAllString(strings.ToUpper(cluster), "_") + "_" + strings.ToUpper(key)
}

// decodeErrors turns mapstructure's nested errors into one line per key.
func decodeErrors(err error) Errors {
	var out Errors
	var walk func(error)
	walk = func(e error) {
		var de *mapstructure.DecodeError
		if errors.As(e, &de) && e == error(de) {
			inner := de.Unwrap()
			msg := inner.Error()
			if rest, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
				for _, k := range strings.Split(rest, ", ") {
					key := joinKey(de.Name(), k)
					out = append(out, &Error{Key: key, Problem: unknownKeyProblem(key)})
				}
				return
			}
			if _, nested := inner.(interface{ Unwrap() []error }); nested {
				walk(inner)
				return
			}
			if _, nested := inner.(*mapstructure.DecodeError); nested {
				walk(inner)
				return
			}
			out = append(out, &Error{Key: de.Name(), Problem: oneLine(friendlyDecode(msg))})
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
			return
		}
		out = append(out, &Error{Problem: oneLine(e.Error())})
	}
	walk(err)
	return out
}

func joinKey(parent, child string) string {
	// mapstructure names the root by its Go type; users know no such key.
	parent = strings.TrimPrefix(strings.TrimPrefix(parent, "config.Config"), ".")
	if parent == "" {
		return child
	}
	return parent + "." + child
}

func friendlyDecode(msg string) string {
	switch {
	case strings.Contains(msg, "time: "):
		return "not a duration: write it as Go does, e.g. 500ms, 30s, 1h, 1h30m"
	case strings.Contains(msg, "expected type 'bool'"):
		return "not true or false"
	case strings.Contains(msg, "expected type 'int'"):
		return "not a whole number"
	case strings.Contains(msg, "expected a map") || strings.Contains(msg, "expected type 'config."):
		return "wrong shape (a list or mapping is expected here; see config/example.yaml)"
	case strings.Contains(msg, "source data must be an array or slice"):
		return "must be a list (items start with '- ')"
	}
	return msg
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// durationNeedsUnit refuses a bare number where a duration is expected:
// `block_period: 3600` would otherwise load as 3.6 µs and silently turn
// anti-flapping off.
func durationNeedsUnit(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("%v has no unit: write a duration such as 1h, 30s or 500ms", data)
	case reflect.String:
		if _, err := time.ParseDuration(data.(string)); err != nil {
			return nil, fmt.Errorf("%q is not a duration: write it as Go does, e.g. 500ms, 30s, 1h, 1h30m", data)
		}
	}
	return data, nil
}
