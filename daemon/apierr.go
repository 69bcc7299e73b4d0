package daemon

import (
	"errors"
	"net/http"
	"strings"

	"github.com/myha/myha/failover"
)

// Error codes of the API: stable words a client can switch on, whatever
// the message says. Every error answer has the same shape (apiError).
const (
	codeUnauthorized   = "unauthorized"       // no or wrong bearer token
	codeForbidden      = "forbidden"          // source outside security.api_allow
	codeNotFound       = "not_found"          // no such cluster, operation or path
	codeBadRequest     = "bad_request"        // a parameter or body the API cannot use
	codeTooLarge       = "too_large"          // request body over the limit
	codeNoLeader       = "no_leader"          // the monitors have no leader to run a change
	codeLeaderDown     = "leader_unreachable" // a follower could not forward to the leader
	codeConflict       = "conflict"           // another change runs, or raft refused the command
	codeBlocked        = "blocked"            // the plan has blockers; nothing was changed
	codeRefused        = "refused"            // fencing refused a failover; nothing was changed
	codeFailed         = "failed"             // the change ran and did not succeed (report attached)
	codeUnavailable    = "unavailable"        // not ready yet, or too many clients: try again
	codeInternal       = "internal"           // a bug, logged
	codeMethodNotFound = "method_not_allowed" // the path exists with another method
)

// apiError is the body of every error answer:
// {"error": {"code": ..., "message": ..., "blockers": [...]}}, with extra
// top-level fields (a failover's report) when there are some.
type apiError struct {
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Blockers []string `json:"blockers"`
}

// writeError is the one way the API answers an error. extra, when not nil,
// adds top-level fields beside "error" (a failover's "report").
func writeError(w http.ResponseWriter, status int, code, message string, blockers []string, extra map[string]any) {
	if blockers == nil {
		blockers = []string{}
	}
	body := map[string]any{"error": apiError{Code: code, Message: message, Blockers: blockers}}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

// blockedError is a failover or switchover refused before any change
// because its plan has blockers; the API lists them one by one.
type blockedError struct{ blockers []string }

func (e *blockedError) Error() string { return "blocked: " + strings.Join(e.blockers, "; ") }

// changeError classifies what cm.failover returned for the API: the HTTP
// status, the code and the blockers.
func changeError(err error) (int, string, []string) {
	var b *blockedError
	switch {
	case errors.As(err, &b):
		return http.StatusConflict, codeBlocked, b.blockers
	case strings.HasPrefix(err.Error(), "refused"):
		return http.StatusConflict, codeRefused, nil
	case err.Error() == "not the leader":
		return http.StatusServiceUnavailable, codeNoLeader, nil
	}
	return http.StatusConflict, codeConflict, nil
}

// reportFailed reports whether a finished change did not reach its goal.
func reportFailed(rep *failover.Report) bool {
	return rep == nil || rep.Result != failover.ResultSuccess && rep.Result != failover.ResultPartial
}
