package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// routeRoles is the least role each route of the API needs, written out
// here from the rule (viewer: every read but the token list; operator:
// run, kill, pause, resume, backfill, enable, disable; admin: apply,
// delete, prune and tokens; none: GET /healthz), not from Route.Role(),
// so that a change to either shows.
var routeRoles = map[string]string{
	"GET /healthz": "",

	"GET /v1/jobs":                       "viewer",
	"GET /v1/jobs/{name}":                "viewer",
	"GET /v1/jobs/{name}/fires":          "viewer",
	"GET /v1/fires":                      "viewer",
	"GET /v1/fires/{job}/{suffix}":       "viewer",
	"GET /v1/fires/{job}/{suffix}/log":   "viewer",
	"GET /v1/nodes":                      "viewer",
	"POST /v1/jobs/{name}/run":           "operator",
	"POST /v1/jobs/{name}/enable":        "operator",
	"POST /v1/jobs/{name}/disable":       "operator",
	"POST /v1/jobs/{name}/backfill":      "operator",
	"POST /v1/jobs/{name}/pause":         "operator",
	"POST /v1/jobs/{name}/resume":        "operator",
	"POST /v1/fires/{job}/{suffix}/kill": "operator",
	"POST /v1/apply":                     "admin",
	"DELETE /v1/jobs/{name}":             "admin",
	"POST /v1/tokens":                    "admin",
	"GET /v1/tokens":                     "admin",
	"DELETE /v1/tokens/{name}":           "admin",
}

// roleRank orders the roles of routeRoles and of the callers below.
var roleRank = map[string]int{"": 0, "viewer": 1, "operator": 2, "admin": 3}

// wildcardValues fill the routes' wildcards with names nothing has, so
// that no call, not even an admin's DELETE, changes what the other calls
// see.
var wildcardValues = map[string]string{
	"{name}":   "no-such-job",
	"{job}":    "no-such-job",
	"{suffix}": "manual-1999-01-01T00:00:00Z",
}

// routeURL is base and the route's path with its wildcards filled by
// wildcardValues (a token route's {name} by a token name nothing has).
func routeURL(t *testing.T, base, route string) string {
	t.Helper()
	_, pattern, _ := strings.Cut(route, " ")
	segments := strings.Split(pattern, "/")
	for i, seg := range segments {
		if !strings.HasPrefix(seg, "{") {
			continue
		}
		v, ok := wildcardValues[seg]
		if !ok {
			t.Fatalf("route %s: no value for wildcard %s", route, seg)
		}
		if strings.HasPrefix(pattern, "/v1/tokens/") {
			v = "no-such-token"
		}
		segments[i] = url.PathEscape(v)
	}
	return base + strings.Join(segments, "/")
}

// send sends req and returns the status, the header and the body.
func send(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

func newRequest(t *testing.T, method, target, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestAPI_EveryRouteAnswersByRole(t *testing.T) {
	// The table and the routes agree, route by route.
	var served []string
	for _, rt := range api.Routes() {
		served = append(served, string(rt))
		want, ok := routeRoles[string(rt)]
		if !ok {
			t.Errorf("route %s is served but not in this test's table: add it with the role the rule gives it", rt)
			continue
		}
		if got := string(rt.Role()); got != want {
			t.Errorf("route %s: Route.Role() is %q, the rule says %q", rt, got, want)
		}
	}
	for route := range routeRoles {
		if !slices.Contains(served, route) {
			t.Errorf("route %s is in this test's table but api.Routes() does not list it", route)
		}
	}
	// GET /metrics is served beside the API (Server.Guard): a read.
	if got := api.RouteMetrics.Role(); got != api.RoleViewer {
		t.Errorf("GET /metrics: Route.Role() is %q, want viewer", got)
	}
	if t.Failed() {
		t.FailNow()
	}

	c := clustertest.Start(t)
	base, admin := serve(t, c, time.Now)
	viewer := c.Token(t, "the-viewer", "viewer")
	operator := c.Token(t, "the-operator", "operator")
	oddRole := c.Token(t, "odd-role", "root") // a stored role that is not a role
	revoked := c.Token(t, "revoked", "admin")
	if status, data := call(t, revoked, "GET", base+"/v1/tokens", nil); status != http.StatusOK {
		t.Fatalf("the token to revoke, before it is: status %d, want 200; body %s", status, data)
	}
	if err := store.RevokeToken(context.Background(), c.Etcd, c.Keys, "revoked"); err != nil {
		t.Fatal(err)
	}
	unknown, err := store.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}

	// Callers without a valid token first, admin last: with the names of
	// wildcardValues, nothing an admin call does can change another's
	// answer anyway.
	type callerCase struct {
		what   string
		header string // Authorization; none when empty
		role   string // the token's role; "-" for no valid token
	}
	callers := []callerCase{
		{"no Authorization header", "", "-"},
		{"Authorization: Basic", "Basic x", "-"},
		{"an admin token's secret under another scheme", "Basic " + admin, "-"},
		{"Bearer with no token", "Bearer ", "-"},
		{"an unknown bearer token", "Bearer " + unknown, "-"},
		{"a revoked admin token", "Bearer " + revoked, "-"},
		{"a token whose role is not a role", "Bearer " + oddRole, "odd"},
		{"a viewer token", "Bearer " + viewer, "viewer"},
		{"an operator token", "Bearer " + operator, "operator"},
		{"an admin token", "Bearer " + admin, "admin"},
	}
	routes := slices.Sorted(maps.Keys(routeRoles))
	for _, cl := range callers {
		for _, route := range routes {
			need := routeRoles[route]
			method, _, _ := strings.Cut(route, " ")
			body := ""
			if method != "GET" {
				body = "{}"
			}
			req := newRequest(t, method, routeURL(t, base, route), body)
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if cl.header != "" {
				req.Header.Set("Authorization", cl.header)
			}
			status, header, data := send(t, req)
			what := fmt.Sprintf("%s with %s", route, cl.what)
			switch {
			case need == "":
				if status != http.StatusOK {
					t.Errorf("%s: status %d, want 200 (no token needed); body %s", what, status, data)
				}
			case cl.role == "-":
				if status != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401; body %s", what, status, data)
				} else if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: 401 without WWW-Authenticate: Bearer (got %q)", what, header.Get("WWW-Authenticate"))
				}
			case cl.role == "odd" || roleRank[cl.role] < roleRank[need]:
				var e api.ErrorResponse
				if status != http.StatusForbidden {
					t.Errorf("%s: status %d, want 403 (needs %s); body %s", what, status, need, data)
				} else if err := json.Unmarshal(data, &e); err != nil || !strings.Contains(e.Error, "needs role "+need) {
					t.Errorf("%s: 403 body %s does not name the role needed (%s)", what, data, need)
				}
			default:
				if status == http.StatusUnauthorized || status == http.StatusForbidden {
					t.Errorf("%s: status %d, want the route's own answer (the role is enough); body %s", what, status, data)
				}
			}
		}
	}
	// None of those calls revoked a token the callers used, or made one.
	toks, err := store.ListTokens(context.Background(), c.Etcd, c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 4 {
		t.Errorf("after the calls: %d tokens, want the 4 made (admin, viewer, operator, odd-role): %+v", len(toks), toks)
	}

	// A run records the token's name as requested_by; the body cannot name
	// someone else: RunRequest has no such field, and unknown fields are
	// refused before anything is written.
	c.StartScheduler(t, "s1")
	callJSON[api.ApplyResponse](t, admin, "POST", base+"/v1/apply", files("harmless.yaml", "name: harmless\nschedule: manual\ncommand: \"true\"\n"), http.StatusOK)
	for _, forged := range []string{`{"by":"mallory"}`, `{"requested_by":"mallory"}`, `{"By":"mallory","env":{}}`} {
		status, data := call(t, operator, "POST", base+"/v1/jobs/harmless/run", forged)
		if status != http.StatusBadRequest || !strings.Contains(string(data), "unknown field") {
			t.Errorf("run with body %s: status %d, want 400 naming the unknown field; body %s", forged, status, data)
		}
	}
	resp, err := c.Etcd.Get(context.Background(), c.Keys.Requests(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 || len(c.Fires(t, "harmless")) != 0 {
		t.Errorf("refused runs wrote %d requests and %d fires", resp.Count, len(c.Fires(t, "harmless")))
	}
	run := callJSON[api.RunResponse](t, operator, "POST", base+"/v1/jobs/harmless/run", api.RunRequest{}, http.StatusAccepted)
	id, err := store.ParseFireID(run.Fire)
	if err != nil {
		t.Fatal(err)
	}
	var fire store.Fire
	clustertest.WaitFor(t, 10*time.Second, "the leader to plan "+run.Fire, func() bool {
		status, data := call(t, viewer, "GET", fireURL(base, id), nil)
		if status != http.StatusOK {
			return false
		}
		if err := json.Unmarshal(data, &fire); err != nil {
			t.Fatalf("decode fire %s: %v", data, err)
		}
		return true
	})
	if fire.RequestedBy != "the-operator" {
		t.Errorf("fire %s: requested_by %q, want the-operator (the token's name)", run.Fire, fire.RequestedBy)
	}
}

func TestAPI_BrowserRequestsAreRefused(t *testing.T) {
	c := clustertest.Start(t)
	base, admin := serve(t, c, time.Now)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	applyBody, err := json.Marshal(files("jobs/alpha.yaml", alphaYAML))
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c)

	// Bodies a form or a simple cross-site fetch can send: 415, even with
	// an admin token and a body that is JSON.
	for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		req := newRequest(t, "POST", base+"/v1/apply", string(applyBody))
		req.Header.Set("Authorization", "Bearer "+admin)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if status, _, data := send(t, req); status != http.StatusUnsupportedMediaType {
			t.Errorf("apply with Content-Type %q: status %d, want 415; body %s", ct, status, data)
		}
	}
	assertUnchanged(t, c, before, "apply with a body that is not application/json")

	// DNS rebinding: a foreign Host over loopback is refused, on every
	// route (also GET /healthz) and whatever the token.
	for _, host := range []string{"evil.example", "evil.example:8080", "evil.example:" + port} {
		for _, rq := range []struct{ method, path, body string }{
			{"POST", "/v1/apply", string(applyBody)},
			{"GET", "/v1/jobs", ""},
			{"GET", "/healthz", ""},
		} {
			req := newRequest(t, rq.method, base+rq.path, rq.body)
			req.Host = host
			req.Header.Set("Authorization", "Bearer "+admin)
			if rq.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			status, _, data := send(t, req)
			if status != http.StatusForbidden || !strings.Contains(string(data), "DNS rebinding") {
				t.Errorf("%s %s with Host %s: status %d, want 403 naming DNS rebinding; body %s", rq.method, rq.path, host, status, data)
			}
		}
	}
	assertUnchanged(t, c, before, "apply with a foreign Host")
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port} {
		req := newRequest(t, "GET", base+"/v1/jobs", "")
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+admin)
		if status, _, data := send(t, req); status != http.StatusOK {
			t.Errorf("GET /v1/jobs with Host %s: status %d, want 200; body %s", host, status, data)
		}
	}

	// No CORS: a preflight gets no Access-Control-* header (so a browser
	// sends nothing after it), and neither does a request with an Origin.
	noCORS := func(what string, h http.Header) {
		t.Helper()
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s: answer has CORS header %s: %q", what, k, h.Values(k))
			}
		}
	}
	for _, path := range []string{"/v1/apply", "/v1/jobs/no-such-job/run", "/v1/tokens", "/v1/jobs", "/healthz"} {
		req := newRequest(t, "OPTIONS", base+path, "")
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		status, h, _ := send(t, req)
		noCORS(fmt.Sprintf("OPTIONS %s (status %d)", path, status), h)
	}
	req := newRequest(t, "GET", base+"/v1/jobs", "")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Authorization", "Bearer "+admin)
	status, h, data := send(t, req)
	if status != http.StatusOK {
		t.Errorf("GET /v1/jobs with an Origin: status %d, want 200; body %s", status, data)
	}
	noCORS("GET /v1/jobs with an Origin", h)

	// A token anywhere but the Authorization header is no token.
	for _, tc := range []struct{ what, query, cookie string }{
		{"a token cookie", "", "token=" + admin},
		{"cookies of every likely name", "", "aion_token=" + admin + "; access_token=" + admin + "; Authorization=" + admin},
		{"?token=", "?token=" + url.QueryEscape(admin), ""},
		{"?access_token=", "?access_token=" + url.QueryEscape(admin), ""},
	} {
		for _, rq := range []struct{ method, path, body string }{
			{"GET", "/v1/jobs", ""},
			{"POST", "/v1/apply", string(applyBody)},
		} {
			req := newRequest(t, rq.method, base+rq.path+tc.query, rq.body)
			if rq.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			if status, _, data := send(t, req); status != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: status %d, want 401; body %s", rq.method, rq.path, tc.what, status, data)
			}
		}
	}
	assertUnchanged(t, c, before, "apply with a token in a cookie or the query")
}

// startHTTP serves h as the aion binary does (cmd/aion apiRunner):
// cfg.Server(h) on cfg.Listener(ln), until the test ends. It returns the
// address.
func startHTTP(t *testing.T, cfg HTTPConfig, h http.Handler) string {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := cfg.Server(h)
	done := make(chan error, 1)
	go func() { done <- hs.Serve(cfg.Listener(ln)) }()
	t.Cleanup(func() {
		_ = hs.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dial opens a raw connection to addr, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// waitClosed reads conn until the server closes it (EOF or a reset) and
// fails if it is still open after bound; it returns what was read.
func waitClosed(t *testing.T, conn net.Conn, r io.Reader, bound time.Duration, what string) []byte {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(bound)); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: the server did not close the connection within %s (read %q)", what, bound, data)
	}
	return data
}

// getRequest is a complete keep-alive GET of path.
func getRequest(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
}

// readResponse reads one response from br and its whole body.
func readResponse(t *testing.T, conn net.Conn, br *bufio.Reader, bound time.Duration) (*http.Response, string) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(bound)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, string(body)
}

func TestHTTPServer_SlowIdleAndExcessClientsAreCut(t *testing.T) {
	const bound = 10 * time.Second // how long anything may take: generous, never asserted as fast
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	// Each case makes short the one limit it checks: net/http falls back
	// on ReadTimeout for a missing ReadHeaderTimeout or IdleTimeout, and
	// that must not be what passes the case.
	long := HTTPConfig{
		ReadHeaderTimeout: time.Minute,
		ReadTimeout:       time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    4 << 10,
		MaxConnections:    2,
	}
	short := func(tune func(*HTTPConfig)) HTTPConfig {
		c := long
		tune(&c)
		return c
	}
	shortHeader := short(func(c *HTTPConfig) { c.ReadHeaderTimeout = 250 * time.Millisecond })

	t.Run("a partial request header is cut off", func(t *testing.T) {
		conn := dial(t, startHTTP(t, shortHeader, ok))
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		if data := waitClosed(t, conn, conn, bound, "a client that stopped mid-header"); strings.Contains(string(data), "200 OK") {
			t.Errorf("an unfinished request was answered: %q", data)
		}
	})

	t.Run("a header sent byte by byte is cut off", func(t *testing.T) {
		conn := dial(t, startHTTP(t, shortHeader, ok))
		stop := make(chan struct{})
		defer close(stop)
		// 400 bytes at 25 ms each would take 10 s: the server must close
		// the connection long before the header ends.
		go func() {
			header := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + strings.Repeat("a", 400) + "\r\n\r\n"
			for i := range len(header) {
				select {
				case <-stop:
					return
				case <-time.After(25 * time.Millisecond):
				}
				if _, err := io.WriteString(conn, header[i:i+1]); err != nil {
					return
				}
			}
		}()
		if data := waitClosed(t, conn, conn, bound, "a client sending its header byte by byte"); strings.Contains(string(data), "200 OK") {
			t.Errorf("the slow request was answered: %q", data)
		}
	})

	t.Run("an idle keep-alive connection is closed", func(t *testing.T) {
		conn := dial(t, startHTTP(t, short(func(c *HTTPConfig) { c.IdleTimeout = 250 * time.Millisecond }), ok))
		br := bufio.NewReader(conn)
		if _, err := io.WriteString(conn, getRequest("/")); err != nil {
			t.Fatal(err)
		}
		resp, body := readResponse(t, conn, br, bound)
		if resp.StatusCode != http.StatusOK || body != "ok\n" || resp.Close {
			t.Fatalf("first request: status %d body %q close %v, want a kept-alive 200", resp.StatusCode, body, resp.Close)
		}
		if rest := waitClosed(t, conn, br, bound, "an idle keep-alive connection"); len(rest) != 0 {
			t.Errorf("the server sent %q on an idle connection", rest)
		}
	})

	t.Run("headers past MaxHeaderBytes are 431", func(t *testing.T) {
		addr := startHTTP(t, long, ok)
		// net/http allows 4 KiB of slack over MaxHeaderBytes before it
		// refuses: a header of twice the limit plus that is past it.
		for _, tc := range []struct {
			size int
			want int
		}{{long.MaxHeaderBytes / 2, http.StatusOK}, {2*long.MaxHeaderBytes + 4096, http.StatusRequestHeaderFieldsTooLarge}} {
			conn := dial(t, addr)
			br := bufio.NewReader(conn)
			req := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + strings.Repeat("b", tc.size) + "\r\n\r\n"
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			// Only the status: refusing, the server closes the connection
			// with the rest of the header unread, which may reset it
			// before the body is read.
			if err := conn.SetReadDeadline(time.Now().Add(bound)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("a %d-byte header: read response: %v", tc.size, err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("a %d-byte header (limit %d): status %d, want %d", tc.size, long.MaxHeaderBytes, resp.StatusCode, tc.want)
			}
			_ = conn.Close()
		}
	})

	t.Run("past MaxConnections a connection waits to be accepted", func(t *testing.T) {
		// Long timeouts: the held connections stay open until the test
		// closes one.
		cfg := long
		addr := startHTTP(t, cfg, ok)
		var held []net.Conn
		for i := range cfg.MaxConnections {
			conn := dial(t, addr)
			if _, err := io.WriteString(conn, getRequest("/")); err != nil {
				t.Fatal(err)
			}
			if resp, _ := readResponse(t, conn, bufio.NewReader(conn), bound); resp.StatusCode != http.StatusOK || resp.Close {
				t.Fatalf("held connection %d: status %d close %v, want a kept-alive 200", i, resp.StatusCode, resp.Close)
			}
			held = append(held, conn)
		}
		third := dial(t, addr) // the kernel completes the handshake; the server does not accept it
		if _, err := io.WriteString(third, getRequest("/")); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(third)
		if err := third.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := br.Peek(1); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a third connection with %d held: got an answer or a close (%v), want no answer while both are held", cfg.MaxConnections, err)
		}
		_ = held[0].Close()
		if resp, body := readResponse(t, third, br, bound); resp.StatusCode != http.StatusOK || body != "ok\n" {
			t.Errorf("the third connection once one closed: status %d body %q, want 200", resp.StatusCode, body)
		}
	})

	t.Run("a streamed response outlives ReadTimeout", func(t *testing.T) {
		// A handler that writes a chunk every 100 ms for 1.2 s, four times
		// ReadTimeout, and stops as a well-behaved streaming handler does
		// when its request's context ends.
		const chunks = 12
		var cancelled atomic.Bool
		stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i := range chunks {
				select {
				case <-r.Context().Done():
					cancelled.Store(true)
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := fmt.Fprintf(w, "chunk %d\n", i); err != nil {
					return
				}
				if err := http.NewResponseController(w).Flush(); err != nil {
					return
				}
			}
		})
		cfg := short(func(c *HTTPConfig) { c.ReadTimeout = 300 * time.Millisecond })
		addr := startHTTP(t, cfg, stream)
		ctx, cancel := context.WithTimeout(t.Context(), bound)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := sc.Err(); err != nil {
			t.Errorf("reading the stream: %v (after %d chunks)", err, len(lines))
		}
		if len(lines) != chunks || lines[chunks-1] != fmt.Sprintf("chunk %d", chunks-1) {
			t.Errorf("the stream was cut off: got %d of %d chunks (ReadTimeout %s): %q", len(lines), chunks, cfg.ReadTimeout, lines)
		}
		if cancelled.Load() {
			t.Errorf("the streaming handler's context was cancelled before it ended (ReadTimeout %s)", cfg.ReadTimeout)
		}
	})
}
