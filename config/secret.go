package config

// Secret holds a password or key. It prints and marshals as a mask so a
// secret that strays into a log line, an error or JSON output is not exposed;
// only Value gives the real text, at the point it is sent to a server.
type Secret string

const mask = "******"

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String masks the secret for fmt and slog.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// GoString masks the secret for %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalText masks the secret for JSON, YAML and slog's text handler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
