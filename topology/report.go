package topology

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// ClusterReport is the JSON shape of a snapshot: `myha topology --json` and
// the daemon's /api/clusters both emit it, so scripts parse one format.
type ClusterReport struct {
	Name    string  `json:"name"`
	Primary *string `json:"primary"`
	// TakenAt is when discovery started: with a snapshot read from a
	// monitor, how old it is.
	TakenAt  time.Time        `json:"taken_at"`
	TookMS   float64          `json:"took_ms"`
	Problems []string         `json:"problems"`
	Unlisted []UnlistedReport `json:"unlisted_replicas"`
	Servers  []ServerReport   `json:"servers"`
}

// UnlistedReport is a connected replica missing from the config.
type UnlistedReport struct {
	Source   string `json:"source"`
	Host     string `json:"host"`
	Port     int    `json:"port,omitempty"`
	ServerID uint32 `json:"server_id,omitempty"`
}

// ServerReport is one server in a ClusterReport.
type ServerReport struct {
	Address         string   `json:"address"`
	Role            Role     `json:"role"`
	Reachable       bool     `json:"reachable"`
	Flavor          string   `json:"flavor,omitempty"`
	Version         string   `json:"version,omitempty"`
	ServerID        uint32   `json:"server_id,omitempty"`
	ReadOnly        bool     `json:"read_only"`
	Source          *string  `json:"source"`
	SourceOutside   string   `json:"source_outside,omitempty"`
	CoPrimaryOf     string   `json:"co_primary_of,omitempty"`
	IORunning       *bool    `json:"io_running"`
	IOState         string   `json:"io_state,omitempty"`
	SQLRunning      *bool    `json:"sql_running"`
	LagSeconds      *int64   `json:"lag_seconds"`
	UsingGTID       string   `json:"using_gtid,omitempty"`
	GTIDPosition    string   `json:"gtid_position"`
	GTIDBinlogPos   string   `json:"gtid_binlog_pos,omitempty"`
	GTIDSlavePos    string   `json:"gtid_slave_pos,omitempty"`
	GTIDIOPos       string   `json:"gtid_io_pos,omitempty"`
	BinlogFile      string   `json:"binlog_coordinate,omitempty"`
	LogBin          bool     `json:"log_bin"`
	LogReplicaUpd   bool     `json:"log_slave_updates"`
	BinlogFormat    string   `json:"binlog_format,omitempty"`
	GTIDStrictMode  bool     `json:"gtid_strict_mode"`
	SemiSyncPrimary bool     `json:"semi_sync_primary"`
	SemiSyncReplica bool     `json:"semi_sync_replica"`
	Errant          []string `json:"errant_gtids"`
	Errors          []string `json:"errors"`
	// Unreachable says why the server could not be read, when reachable
	// is false (the tree prints it on the server's line).
	Unreachable string  `json:"unreachable_reason,omitempty"`
	ProbeMS     float64 `json:"probe_ms"`
	// Maintenance is why the server is in maintenance (myha maintenance).
	Maintenance string `json:"maintenance,omitempty"`
}

// Report converts a snapshot to its JSON shape.
func (s *Snapshot) Report() ClusterReport {
	r := ClusterReport{Name: s.Cluster, TakenAt: s.TakenAt, TookMS: ms(s.Took.Seconds()), Problems: nonNil(s.Problems), Unlisted: []UnlistedReport{}}
	if s.Primary != "" {
		p := s.Primary
		r.Primary = &p
	}
	for _, u := range s.Unlisted {
		r.Unlisted = append(r.Unlisted, UnlistedReport(u))
	}
	for i := range s.Servers {
		v := &s.Servers[i]
		sr := ServerReport{
			Address: v.Spec.Address, Role: v.Role, Reachable: v.Reachable, ServerID: v.ServerID,
			ReadOnly: v.ReadOnly || v.SuperReadOnly, SourceOutside: v.SourceOutside, CoPrimaryOf: v.CoPrimaryOf,
			LogBin: v.LogBin, LogReplicaUpd: v.LogReplicaUpd, BinlogFormat: v.BinlogFormat, GTIDStrictMode: v.GTIDStrictMode,
			SemiSyncPrimary: v.SemiSync.SourceEnabled, SemiSyncReplica: v.SemiSync.ReplicaOn,
			Errant: nonNil(v.Errant), Errors: nonNil(v.Problems), ProbeMS: ms(v.ProbeRTT.Seconds()),
			BinlogFile: v.BinlogCoord.String(), Maintenance: v.Maintenance,
		}
		if v.Reachable {
			sr.Flavor, sr.Version = string(v.Dialect.Flavor), v.VersionRaw
			sr.GTIDPosition = v.ExecutedPosition().String()
			sr.GTIDBinlogPos, sr.GTIDSlavePos = v.GTIDBinlogPos.String(), v.GTIDSlavePos.String()
		}
		if v.Source != "" {
			src := v.Source
			sr.Source = &src
		}
		if c, ok := v.PrimaryConn(); ok {
			io, sql := c.IORunning(), c.SQLRunning
			sr.IORunning, sr.SQLRunning, sr.IOState = &io, &sql, c.IOState
			sr.LagSeconds, sr.UsingGTID = c.LagSeconds, c.UsingGTID
			sr.GTIDIOPos = c.GTIDIOPos.String()
			if v.Dialect.Flavor == "mysql" {
				sr.GTIDIOPos = c.RetrievedSet.String()
			}
		}
		if !v.Reachable {
			sr.Unreachable = v.Error
			if len(sr.Errors) == 0 && v.Error != "" {
				sr.Errors = []string{"unreachable: " + v.Error}
			}
		}
		r.Servers = append(r.Servers, sr)
	}
	return r
}

func ms(sec float64) float64 { return float64(int64(sec*1e5)) / 100 }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteTree prints the snapshot as an indented replication tree, the way a
// DBA reads a topology. It draws from the report, so a tree read from a
// monitor's API (which serves the report) is the same as one discovered
// here.
func (s *Snapshot) WriteTree(w io.Writer) {
	r := s.Report()
	r.WriteTree(w)
}

// WriteTree prints the report as an indented replication tree: the primary
// first, replicas under their sources, then servers outside the tree and
// the problems found.
func (r *ClusterReport) WriteTree(w io.Writer) {
	primary := "none"
	if r.Primary != nil && *r.Primary != "" {
		primary = *r.Primary
	}
	took := time.Duration(math.Round(r.TookMS * 1e6))
	fmt.Fprintf(w, "cluster %s   primary: %s   (discovered in %s)\n", r.Name, primary, took.Round(100_000))
	children := map[string][]int{}
	placed := map[int]bool{}
	for i, v := range r.Servers {
		if v.Source != nil && *v.Source != "" {
			children[*v.Source] = append(children[*v.Source], i)
		}
	}
	var walk func(i int, prefix string, last bool, depth int)
	walk = func(i int, prefix string, last bool, depth int) {
		if i < 0 || placed[i] {
			return
		}
		placed[i] = true
		v := &r.Servers[i]
		branch, next := "", ""
		if depth > 0 {
			branch, next = "├─ ", "│  "
			if last {
				branch, next = "└─ ", "   "
			}
		}
		fmt.Fprintf(w, "%s%s%s\n", prefix, branch, v.treeLine())
		for _, p := range v.problems() {
			fmt.Fprintf(w, "%s%s  ! %s\n", prefix, next, p)
		}
		var todo []int
		for _, k := range children[v.Address] {
			if !placed[k] && r.Servers[k].CoPrimaryOf != v.Address {
				todo = append(todo, k)
			}
		}
		for n, k := range todo {
			walk(k, prefix+next, n == len(todo)-1, depth+1)
		}
	}
	if i := r.indexOf(primary); i >= 0 {
		walk(i, "", true, 0)
		if co := r.Servers[i].CoPrimaryOf; co != "" {
			walk(r.indexOf(co), "", true, 0)
		}
	}
	var rest []int
	for i := range r.Servers {
		if !placed[i] {
			rest = append(rest, i)
		}
	}
	if len(rest) > 0 {
		if primary != "none" {
			fmt.Fprintln(w, "not in the tree:")
		}
		for _, i := range rest {
			walk(i, "", true, 0)
		}
	}
	for _, u := range r.Unlisted {
		fmt.Fprintf(w, "unlisted replica %s (server_id %d) of %s\n", joinHostPort(u.Host, u.Port), u.ServerID, u.Source)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "problems:")
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  ! %s\n", p)
		}
	}
}

func (r *ClusterReport) indexOf(addr string) int {
	for i := range r.Servers {
		if r.Servers[i].Address == addr {
			return i
		}
	}
	return -1
}

// problems are the server's findings as the tree lists them under it: the
// report's errors without the line Report adds for an unreachable server
// (the tree shows that reason on the server's own line).
func (v *ServerReport) problems() []string {
	if !v.Reachable && len(v.Errors) == 1 && v.Errors[0] == "unreachable: "+v.Unreachable {
		return nil
	}
	return v.Errors
}

func (v *ServerReport) treeLine() string {
	if v.Maintenance != "" {
		return v.treeLineOf() + "  [MAINTENANCE: " + v.Maintenance + "]"
	}
	return v.treeLineOf()
}

func (v *ServerReport) treeLineOf() string {
	parts := []string{v.Address, string(v.Role)}
	if !v.Reachable {
		why := "UNREACHABLE"
		if v.Unreachable != "" {
			why += " (" + v.Unreachable + ")"
		}
		return strings.Join(append(parts, why), "  ")
	}
	parts = append(parts, v.Version)
	if v.ReadOnly {
		parts = append(parts, "ro")
	} else {
		parts = append(parts, "RW")
	}
	if v.CoPrimaryOf != "" {
		parts = append(parts, "co-primary of "+v.CoPrimaryOf)
	}
	if v.IORunning != nil {
		lag := "lag ?"
		if v.LagSeconds != nil {
			lag = fmt.Sprintf("lag %ds", *v.LagSeconds)
		}
		sql := "No"
		if v.SQLRunning != nil && *v.SQLRunning {
			sql = "Yes"
		}
		parts = append(parts, fmt.Sprintf("io:%s sql:%s", v.IOState, sql), lag)
	}
	parts = append(parts, "gtid "+orDash(v.GTIDPosition))
	if len(v.Errant) > 0 {
		parts = append(parts, "ERRANT "+strings.Join(v.Errant, ","))
	}
	return strings.Join(parts, "  ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
