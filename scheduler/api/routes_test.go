package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestRoutes_AreMuxPatternsWithAMethod(t *testing.T) {
	seen := make(map[Route]bool)
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		if seen[rt] {
			t.Errorf("route %s is listed twice", rt)
		}
		seen[rt] = true
		switch rt.Method() {
		case http.MethodGet, http.MethodPost, http.MethodDelete:
		default:
			t.Errorf("route %s: method %q", rt, rt.Method())
		}
		if !strings.HasPrefix(rt.Pattern(), "/") {
			t.Errorf("route %s: pattern %q does not start with /", rt, rt.Pattern())
		}
		mux.HandleFunc(string(rt), func(http.ResponseWriter, *http.Request) {}) // panics on a bad or conflicting pattern
	}
}

func TestRoutes_PathFillsEveryWildcardEscaped(t *testing.T) {
	tests := []struct {
		route  Route
		values []string
		want   string
	}{
		{RouteListJobs, nil, "/v1/jobs"},
		{RouteGetJob, []string{"backup"}, "/v1/jobs/backup"},
		{RouteRunJob, []string{"a/b c"}, "/v1/jobs/a%2Fb%20c/run"},
		{RouteGetLog, []string{"backup", "2026-11-24T02:00:00Z"}, "/v1/fires/backup/2026-11-24T02:00:00Z/log"},
		{RouteKillFire, []string{"c", "after-p@2026-11-24T02:00:00Z"}, "/v1/fires/c/after-p@2026-11-24T02:00:00Z/kill"},
	}
	for _, tt := range tests {
		got, err := tt.route.Path(tt.values...)
		if err != nil || got != tt.want {
			t.Errorf("%s.Path(%q) = %q, %v; want %q", tt.route, tt.values, got, err, tt.want)
		}
	}
	for _, bad := range []struct {
		route  Route
		values []string
	}{{RouteGetJob, nil}, {RouteGetJob, []string{"a", "b"}}, {RouteListJobs, []string{"a"}}, {RouteGetFire, []string{"a"}}} {
		if p, err := bad.route.Path(bad.values...); err == nil {
			t.Errorf("%s.Path(%q) = %q, want an error", bad.route, bad.values, p)
		}
	}
	if got := JobPath("backup"); got != "/v1/jobs/backup" {
		t.Errorf("JobPath = %q", got)
	}
	if got := FirePath(FireID{Job: "backup", Suffix: "manual-x"}); got != "/v1/fires/backup/manual-x" {
		t.Errorf("FirePath = %q", got)
	}
}

func TestErrors_MatchTheSentinelOfTheirStatus(t *testing.T) {
	sentinels := []error{ErrBadRequest, ErrNotFound, ErrConflict, ErrTooLarge, ErrServer, ErrBadGateway, ErrUnavailable, ErrUnreachable}
	tests := []struct {
		err  error
		want error
	}{
		{&Error{Status: 400}, ErrBadRequest},
		{&Error{Status: 404}, ErrNotFound},
		{&Error{Status: 405}, nil},
		{&Error{Status: 409}, ErrConflict},
		{&Error{Status: 413}, ErrTooLarge},
		{&Error{Status: 500}, ErrServer},
		{&Error{Status: 501}, ErrServer},
		{&Error{Status: 502}, ErrBadGateway},
		{&Error{Status: 503}, ErrUnavailable},
		{&UnreachableError{URL: "http://x", Err: errors.New("refused")}, ErrUnreachable},
	}
	for _, tt := range tests {
		wrapped := errors.Join(errors.New("context"), tt.err)
		for _, s := range sentinels {
			if got := errors.Is(wrapped, s); got != (s == tt.want) {
				t.Errorf("errors.Is(%#v, %v) = %v", tt.err, s, got)
			}
		}
	}
	e := &UnreachableError{URL: "http://x", Err: errors.New("refused")}
	if e.Error() != "cannot reach the Aion API at http://x: refused" || !errors.Is(e, e.Err) {
		t.Errorf("UnreachableError: %q", e)
	}
}

func TestNewClient_WantsAnHTTPURL(t *testing.T) {
	for _, bad := range []string{"", "ftp://example.com", "127.0.0.1:8080", "http://"} {
		if _, err := NewClient(bad, nil); err == nil {
			t.Errorf("NewClient(%q): no error", bad)
		}
	}
	c, err := NewClient("https://aion.example.com:8080/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "https://aion.example.com:8080" {
		t.Errorf("NewClient: base %q", c.BaseURL())
	}
}
