// Package apiserver serves Aion's HTTP API (package api: its routes and
// wire types): every scheduler serves it, leader or not. User intent goes
// straight into etcd with optimistic transactions (job definitions with
// store.Apply, manual runs with store.RequestRun, which the leader turns
// into a fenced fire), so no request is ever forwarded to the leader.
// Output of runs is fetched from the executor that ran them over NATS
// request-reply, each request signed with the log signing key
// (store.LogRequest.Sign); executors' load reports are kept from the load subject
// (store.LoadSubject).
// Records read from etcd become api types in one place, convert.go.
//
//	srv := apiserver.New(etcdClient, natsConn, store.Keys{Prefix: "/aion/"}, "aion.", logger, time.Now)
//	if err := srv.Start(ctx); err != nil { ... } // subscribes to load reports
//	defer srv.Close()
//	http.ListenAndServe(":8080", srv.Handler())
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// Limits and timeouts of the API.
const (
	// etcdTimeout bounds the etcd work of one request.
	etcdTimeout = 10 * time.Second
	// logTimeout is how long an executor has to answer a log request.
	logTimeout = 2 * time.Second
	// loadForgetAfter drops load reports of nodes gone this long.
	loadForgetAfter = time.Minute
)

// Server is the HTTP API of one scheduler process.
type Server struct {
	etcd          *clientv3.Client
	nats          *nats.Conn
	keys          store.Keys
	subjectPrefix string
	log           *zap.Logger
	now           func() time.Time
	hosts         []string // the API's names besides loopback ones (checkHost)

	mu    sync.Mutex
	loads map[string]store.LoadReport // latest report per node; guarded by mu
	sub   *nats.Subscription          // guarded by mu
	stop  func() bool                 // ends the Start context's hook; guarded by mu
	// logKey signs log requests (store.LogSigningKey), read once; guarded by mu.
	logKey []byte
}

// logSigningKey returns the key that signs log requests: Start's, or read
// from etcd the first time if Start was not called (executors and Start
// create it; a request does not).
func (s *Server) logSigningKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	key := s.logKey
	s.mu.Unlock()
	if key != nil {
		return key, nil
	}
	key, err := store.ReadLogSigningKey(ctx, s.etcd, s.keys)
	if errors.Is(err, store.ErrNoLogKey) {
		return nil, errorf(http.StatusBadGateway, "cannot ask an executor for output: %v", err)
	}
	if err != nil {
		return nil, fmt.Errorf("sign the log request: %w", err)
	}
	s.mu.Lock()
	s.logKey = key
	s.mu.Unlock()
	return key, nil
}

// Option sets an optional part of a Server.
type Option func(*Server)

// WithHosts names the API (scheduler.api_hosts): the Host a request may
// give besides localhost, 127.0.0.1 and [::1] on a loopback address, and
// the only ones on other addresses (see checkHost). Check names with
// ValidateHosts first.
func WithHosts(names ...string) Option {
	return func(s *Server) {
		for _, n := range names {
			s.hosts = append(s.hosts, hostName(n))
		}
	}
}

// New builds the API server; it does nothing until Start and Handler are
// used. subjectPrefix is the NATS subject prefix (default "aion."); now is
// the clock (time.Now outside tests).
func New(etcd *clientv3.Client, nc *nats.Conn, keys store.Keys, subjectPrefix string, log *zap.Logger, now func() time.Time, opts ...Option) *Server {
	s := &Server{
		etcd: etcd, nats: nc, keys: keys, subjectPrefix: subjectPrefix,
		log: log.Named("api"), now: now,
		loads: make(map[string]store.LoadReport),
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// Start reads the log signing key (creating it if no executor has yet) and
// subscribes to executors' load reports, which GET /v1/nodes shows.
// It stops when ctx ends or Close is called. The handler works without it,
// showing nodes without load.
func (s *Server) Start(ctx context.Context) error {
	// Before any request: a request never writes etcd but for its intent.
	key, err := store.LogSigningKey(ctx, s.etcd, s.keys)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		return errors.New("api: already started")
	}
	s.logKey = key
	sub, err := s.nats.Subscribe(store.LoadSubject(s.subjectPrefix), s.onLoad)
	if err != nil {
		return fmt.Errorf("api: subscribe to %s: %w", store.LoadSubject(s.subjectPrefix), err)
	}
	s.sub = sub
	s.stop = context.AfterFunc(ctx, func() { _ = s.Close() })
	return nil
}

// Close stops listening to load reports. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	sub, stop := s.sub, s.stop
	s.sub, s.stop = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	if sub == nil {
		return nil
	}
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("api: unsubscribe from load reports: %w", err)
	}
	return nil
}

func (s *Server) onLoad(m *nats.Msg) {
	var r store.LoadReport
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Node == "" {
		s.log.Debug("bad load report", zap.Error(err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.loads[r.Node]; !ok || !r.At.Before(old.At) {
		s.loads[r.Node] = r
	}
}

// handler is one route's work; its error becomes the answer (see wrap).
type handler func(http.ResponseWriter, *http.Request) error

// handlers maps every route of package api to its handler.
func (s *Server) handlers() map[api.Route]handler {
	return map[api.Route]handler{
		api.RouteApply:       s.apply,
		api.RouteListJobs:    s.listJobs,
		api.RouteGetJob:      s.getJob,
		api.RouteDeleteJob:   s.deleteJob,
		api.RouteRunJob:      s.runJob,
		api.RouteEnableJob:   func(w http.ResponseWriter, r *http.Request) error { return s.setDisabled(w, r, false) },
		api.RouteDisableJob:  func(w http.ResponseWriter, r *http.Request) error { return s.setDisabled(w, r, true) },
		api.RouteListFires:   s.listFires,
		api.RouteBackfill:    s.backfillJob,
		api.RoutePauseJob:    func(w http.ResponseWriter, r *http.Request) error { return s.pauseJob(w, r, true) },
		api.RouteResumeJob:   func(w http.ResponseWriter, r *http.Request) error { return s.pauseJob(w, r, false) },
		api.RouteRecentFires: s.listRecentFires,
		api.RouteGetFire:     s.getFire,
		api.RouteGetLog:      s.getLog,
		api.RouteKillFire:    s.killFire,
		api.RouteListNodes:   s.listNodes,
		api.RouteCreateToken: s.createToken,
		api.RouteListTokens:  s.listTokens,
		api.RouteRevokeToken: s.revokeToken,
		api.RouteHealth:      health,
	}
}

// Handler returns the API's routes, api.Routes(). A route this server has
// no handler for answers 501 (handlers_test.go checks there is none).
// Every request is checked first for its Host (checkHost); every route
// then for its token and role (authorize, by the route's api.Role) and
// its body's Content-Type, in wrap.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	handlers := s.handlers()
	for _, rt := range api.Routes() {
		h, ok := handlers[rt]
		if !ok {
			h = func(http.ResponseWriter, *http.Request) error {
				return errorf(http.StatusNotImplemented, "%s is not served by this server", rt)
			}
		}
		mux.Handle(string(rt), s.wrap(rt, h))
	}
	return s.hostChecked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// No route: the mux answers 404 or 405 (or redirects to a
			// cleaned path); errors go out as JSON like every other.
			w = &jsonErrorWriter{ResponseWriter: w, method: r.Method, path: r.URL.Path}
		}
		mux.ServeHTTP(w, r)
	}))
}

// Guard serves h as route rt, outside the API's own routes (the binary's
// /metrics): with the Host check, and the token and role rt.Role() needs,
// as every route of the API.
func (s *Server) Guard(rt api.Route, h http.Handler) http.Handler {
	inner := s.wrap(rt, func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	})
	return s.hostChecked(inner)
}

// hostChecked serves h only to requests whose Host is the API's (checkHost).
func (s *Server) hostChecked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if he := s.checkHost(r); he != nil {
			s.log.Debug("request refused", zap.String("host", r.Host), zap.String("path", r.URL.Path), zap.String("error", he.msg))
			writeJSON(w, he.status, api.ErrorResponse{Error: he.msg})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// health answers GET /healthz in plain text.
func health(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n") // the client went away; nothing to do
	return nil
}

// jsonErrorWriter replaces the plain-text body of an error the mux writes
// itself (no route, method not allowed) with an ErrorResponse.
type jsonErrorWriter struct {
	http.ResponseWriter
	method, path string
	replaced     bool
}

func (w *jsonErrorWriter) WriteHeader(status int) {
	if status < 400 {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replaced = true
	w.Header().Del("Content-Length")
	msg := fmt.Sprintf("%s %s: %s", w.method, w.path, strings.ToLower(http.StatusText(status)))
	if allow := w.Header().Get("Allow"); allow != "" {
		msg += ": use " + allow
	}
	writeJSON(w.ResponseWriter, status, api.ErrorResponse{Error: msg})
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil // the mux's text, already replaced
	}
	return w.ResponseWriter.Write(p)
}
