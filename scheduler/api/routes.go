package api

import (
	"fmt"
	"net/url"
	"strings"
)

// Route is one endpoint of the API as a net/http ServeMux pattern: a
// method, a space and a path whose {wildcards} are whole segments. The
// server registers exactly Routes(); the Client builds its paths from the
// same constants, so a route is spelled in one place.
type Route string

// The routes of the API.
const (
	RouteApply       Route = "POST /v1/apply"
	RouteListJobs    Route = "GET /v1/jobs"
	RouteGetJob      Route = "GET /v1/jobs/{name}"
	RouteDeleteJob   Route = "DELETE /v1/jobs/{name}"
	RouteRunJob      Route = "POST /v1/jobs/{name}/run"
	RouteEnableJob   Route = "POST /v1/jobs/{name}/enable"
	RouteDisableJob  Route = "POST /v1/jobs/{name}/disable"
	RouteListFires   Route = "GET /v1/jobs/{name}/fires"
	RouteBackfill    Route = "POST /v1/jobs/{name}/backfill"
	RoutePauseJob    Route = "POST /v1/jobs/{name}/pause"
	RouteResumeJob   Route = "POST /v1/jobs/{name}/resume"
	RouteRecentFires Route = "GET /v1/fires"
	RouteGetFire     Route = "GET /v1/fires/{job}/{suffix}"
	RouteGetLog      Route = "GET /v1/fires/{job}/{suffix}/log"
	RouteKillFire    Route = "POST /v1/fires/{job}/{suffix}/kill"
	RouteListNodes   Route = "GET /v1/nodes"
	RouteCreateToken Route = "POST /v1/tokens"
	RouteListTokens  Route = "GET /v1/tokens"
	RouteRevokeToken Route = "DELETE /v1/tokens/{name}"
	RouteHealth      Route = "GET /healthz"
	// RouteMetrics is not in Routes(): the aion binary serves its
	// Prometheus metrics beside the API, guarded like every route
	// (apiserver.Server.Guard).
	RouteMetrics Route = "GET /metrics"
)

// Routes lists every route of the API.
func Routes() []Route {
	return []Route{
		RouteApply, RouteListJobs, RouteGetJob, RouteDeleteJob, RouteRunJob, RouteEnableJob, RouteDisableJob,
		RouteListFires, RouteBackfill, RoutePauseJob, RouteResumeJob,
		RouteRecentFires, RouteGetFire, RouteGetLog, RouteKillFire, RouteListNodes,
		RouteCreateToken, RouteListTokens, RouteRevokeToken, RouteHealth,
	}
}

// Role is what a token may do. Each role may do everything the roles
// before it may: viewer, then operator, then admin.
type Role string

// The roles, from least to most.
const (
	// RoleNone is the role of a route anyone may call (GET /healthz only).
	RoleNone Role = ""
	// RoleViewer reads: every GET but the token list.
	RoleViewer Role = "viewer"
	// RoleOperator also runs, kills, pauses, resumes, backfills, enables
	// and disables jobs.
	RoleOperator Role = "operator"
	// RoleAdmin also applies, deletes and prunes jobs and manages tokens.
	RoleAdmin Role = "admin"
)

// Roles lists the roles a token can have, least first.
func Roles() []Role { return []Role{RoleViewer, RoleOperator, RoleAdmin} }

// ParseRole reads a role name; anything but viewer, operator or admin is
// an error.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q: want viewer, operator or admin", s)
}

// rank orders the roles; an unknown role ranks below every real one.
func (r Role) rank() int {
	switch r {
	case RoleNone:
		return 0
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return -1
}

// Allows reports whether a token with role r may call a route that needs
// role need.
func (r Role) Allows(need Role) bool { return r.rank() >= 1 && r.rank() >= need.rank() }

// Role is the least role a token must have to call the route; RoleNone
// means no token is needed. This is the one place the roles of routes are
// declared: the server enforces it for every route.
func (r Route) Role() Role {
	switch r {
	case RouteHealth:
		return RoleNone
	case RouteListJobs, RouteGetJob, RouteListFires, RouteRecentFires, RouteGetFire, RouteGetLog, RouteListNodes, RouteMetrics:
		return RoleViewer
	case RouteRunJob, RouteKillFire, RoutePauseJob, RouteResumeJob, RouteBackfill, RouteEnableJob, RouteDisableJob:
		return RoleOperator
	}
	// Apply, delete, the token routes, and any route added without a
	// thought: admin.
	return RoleAdmin
}

// Method is the route's HTTP method.
func (r Route) Method() string {
	method, _, _ := strings.Cut(string(r), " ")
	return method
}

// Pattern is the route's path pattern, with its {wildcards}.
func (r Route) Pattern() string {
	_, pattern, _ := strings.Cut(string(r), " ")
	return pattern
}

// Path fills the route's wildcards, in order, with values (path-escaped).
// It is an error to give more or fewer values than the route has
// wildcards.
func (r Route) Path(values ...string) (string, error) {
	path, used, wildcards := r.fill(values)
	if used != len(values) || used != wildcards {
		return "", fmt.Errorf("route %s has %d wildcards, got %d values", r, wildcards, len(values))
	}
	return path, nil
}

// fill replaces the first wildcards with values; it returns the path, how
// many values it used and how many wildcards the route has. The Client's
// calls give each route its number of values (client_test.go checks).
func (r Route) fill(values []string) (path string, used, wildcards int) {
	segments := strings.Split(r.Pattern(), "/")
	for i, seg := range segments {
		if !strings.HasPrefix(seg, "{") {
			continue
		}
		if wildcards < len(values) {
			segments[i] = url.PathEscape(values[wildcards])
			used++
		}
		wildcards++
	}
	return strings.Join(segments, "/"), used, wildcards
}

// JobPath is the path of a job, GET /v1/jobs/{name}.
func JobPath(name string) string {
	path, _, _ := RouteGetJob.fill([]string{name})
	return path
}

// FirePath is the path of a fire, GET /v1/fires/{job}/{suffix}.
func FirePath(id FireID) string {
	path, _, _ := RouteGetFire.fill([]string{id.Job, id.Suffix})
	return path
}
