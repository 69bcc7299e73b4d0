package config

import (
	"bytes"
	"testing"
)

// Whatever a password or name looks like, what WriteYAML prints reads back
// as the same string (MHA configs hold passwords like 0x1F, which a
// hand-rolled writer printed bare and YAML read back as 31).
func TestWriteYAMLRoundTripsAwkwardStrings(t *testing.T) {
	for _, p := range []string{"0x1F", "0o17", "017", "1e3", "1_000", ".inf", "yes", "No", "on", "null", "~", "true",
		"- x", "? x", "a: b", "#x", "x #y", " padded ", "'", `"`, `\`, "%x", "@x", "`x", "!x", "&x", "*x", "|", ">",
		"[x]", "{x}", "x,y", "2001-01-01", "12:30", "\u00e9t\u00e9", "tab\there"} {
		c := &Config{Clusters: []Cluster{{Name: "app", User: "u", Password: Secret(p), ReplicationUser: "r", ReplicationPassword: Secret(p),
			Servers: []Server{{Address: "db1:3306"}, {Address: "db2:3306"}}}}}
		var buf bytes.Buffer
		if err := WriteYAML(&buf, c, true); err != nil {
			t.Fatal(err)
		}
		back, err := Parse(buf.Bytes(), Options{})
		if err != nil {
			t.Fatalf("password %q: the written YAML does not load: %v\n%s", p, err, buf.String())
		}
		if got := back.Clusters[0].Password.Value(); got != p {
			t.Fatalf("password %q read back as %q from:\n%s", p, got, buf.String())
		}
	}
}
