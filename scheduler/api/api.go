// Package api serves Aion's HTTP API: JSON over HTTP for the CLI and the
// web UI. Every scheduler serves it, leader or not: user intent goes
// straight into etcd with optimistic transactions (job definitions with
// store.Apply, manual runs with store.RequestRun, which the leader turns
// into a fenced fire), so no request is ever forwarded to the leader.
// Output of runs is fetched from the executor that ran them over NATS
// request-reply; executors' load reports are kept from aion.nodes.load.
//
//	srv := api.New(etcdClient, natsConn, store.Keys{Prefix: "/aion/"}, "aion.", logger, time.Now)
//	if err := srv.Start(ctx); err != nil { ... } // subscribes to load reports
//	defer srv.Close()
//	http.ListenAndServe(":8080", srv.Handler())
//
// Endpoints (errors are {"error": "...", "problems": ["..."]}):
//
//	POST   /v1/apply?prune=true&dry_run=true     apply job files (ApplyRequest → ApplyResponse)
//	GET    /v1/jobs                              JobList
//	GET    /v1/jobs/{name}                       JobDetail
//	DELETE /v1/jobs/{name}?cascade=true          DeleteResponse; 409 while other jobs list it in parents, unless cascade
//	POST   /v1/jobs/{name}/run                   RunRequest → 202 RunResponse
//	POST   /v1/jobs/{name}/enable                EnableResponse
//	POST   /v1/jobs/{name}/disable               EnableResponse
//	GET    /v1/jobs/{name}/fires?limit=N         FireList, newest first
//	POST   /v1/jobs/{name}/backfill              BackfillRequest → 202 BackfillResponse (200 for a dry run)
//	POST   /v1/jobs/{name}/pause                 PauseRequest{note} → 202
//	POST   /v1/jobs/{name}/resume                PauseRequest{catchup} → 202
//	GET    /v1/fires/{job}/{suffix}              store.Fire (fire ID job@suffix)
//	GET    /v1/fires/{job}/{suffix}/log?offset=N LogChunk
//	POST   /v1/fires/{job}/{suffix}/kill         KillRequest → 202; 409 when the fire has ended
//	GET    /v1/nodes                             NodeList
//	GET    /healthz                              "ok"
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Limits and timeouts of the API.
const (
	// MaxBodyBytes bounds a request body (an apply sends whole job files).
	MaxBodyBytes = 8 << 20
	// etcdTimeout bounds the etcd work of one request.
	etcdTimeout = 10 * time.Second
	// logTimeout is how long an executor has to answer a log request.
	logTimeout = 2 * time.Second
	// DefaultFireLimit and MaxFireLimit bound fire listings.
	DefaultFireLimit = 20
	MaxFireLimit     = 1000
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

	mu    sync.Mutex
	loads map[string]store.LoadReport // latest report per node; guarded by mu
	sub   *nats.Subscription          // guarded by mu
	stop  func() bool                 // ends the Start context's hook; guarded by mu
}

// New builds the API server; it does nothing until Start and Handler are
// used. subjectPrefix is the NATS subject prefix (default "aion."); now is
// the clock (time.Now outside tests).
func New(etcd *clientv3.Client, nc *nats.Conn, keys store.Keys, subjectPrefix string, log *zap.Logger, now func() time.Time) *Server {
	return &Server{
		etcd: etcd, nats: nc, keys: keys, subjectPrefix: subjectPrefix,
		log: log.Named("api"), now: now,
		loads: make(map[string]store.LoadReport),
	}
}

// Start subscribes to executors' load reports, which GET /v1/nodes shows.
// It stops when ctx ends or Close is called. The handler works without it,
// showing nodes without load.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		return errors.New("api: already started")
	}
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

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := []struct {
		pattern string
		h       func(http.ResponseWriter, *http.Request) error
	}{
		{"POST /v1/apply", s.apply},
		{"GET /v1/jobs", s.listJobs},
		{"GET /v1/jobs/{name}", s.getJob},
		{"DELETE /v1/jobs/{name}", s.deleteJob},
		{"POST /v1/jobs/{name}/run", s.runJob},
		{"POST /v1/jobs/{name}/enable", func(w http.ResponseWriter, r *http.Request) error { return s.setDisabled(w, r, false) }},
		{"POST /v1/jobs/{name}/disable", func(w http.ResponseWriter, r *http.Request) error { return s.setDisabled(w, r, true) }},
		{"GET /v1/jobs/{name}/fires", s.listFires},
		{"POST /v1/jobs/{name}/backfill", s.backfillJob},
		{"POST /v1/jobs/{name}/pause", func(w http.ResponseWriter, r *http.Request) error { return s.pauseJob(w, r, true) }},
		{"POST /v1/jobs/{name}/resume", func(w http.ResponseWriter, r *http.Request) error { return s.pauseJob(w, r, false) }},
		{"GET /v1/fires/{job}/{suffix}", s.getFire},
		{"GET /v1/fires/{job}/{suffix}/log", s.getLog},
		{"POST /v1/fires/{job}/{suffix}/kill", s.killFire},
		{"GET /v1/nodes", s.listNodes},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, s.wrap(rt.pattern, rt.h))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// No route: the mux answers 404 or 405 (or redirects to a
			// cleaned path); errors go out as JSON like every other.
			w = &jsonErrorWriter{ResponseWriter: w, method: r.Method, path: r.URL.Path}
		}
		mux.ServeHTTP(w, r)
	})
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
	writeJSON(w.ResponseWriter, status, ErrorResponse{Error: msg})
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.replaced {
		return len(p), nil // the mux's text, already replaced
	}
	return w.ResponseWriter.Write(p)
}

// httpError is an answer other than 2xx that a handler chose.
type httpError struct {
	status   int
	msg      string
	problems []string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// wrap turns a handler's error into a JSON error answer: an httpError as
// it says, an etcd timeout as 503, anything else as 500 (logged).
func (s *Server) wrap(pattern string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		err := h(w, r)
		if err == nil {
			s.log.Debug("request", zap.String("route", pattern), zap.String("path", r.URL.Path), zap.Duration("took", time.Since(start)))
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
		case etcdRefusedSize(err) != nil:
			he = etcdRefusedSize(err)
		case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
			he = errorf(http.StatusServiceUnavailable, "etcd did not answer in time: %v", err)
		default:
			he = errorf(http.StatusInternalServerError, "%v", err)
		}
		if he.status >= 500 {
			s.log.Warn("request failed", zap.String("route", pattern), zap.String("path", r.URL.Path),
				zap.Int("status", he.status), zap.Error(err))
		} else {
			s.log.Debug("request refused", zap.String("route", pattern), zap.String("path", r.URL.Path),
				zap.Int("status", he.status), zap.String("error", he.msg))
		}
		writeJSON(w, he.status, ErrorResponse{Error: he.msg, Problems: he.problems})
	})
}

// etcdRefusedSize turns etcd's refusal of a request beyond its limits into
// a 413 naming the limit; it is nil for other errors. Nothing was written:
// each request is one transaction.
func etcdRefusedSize(err error) *httpError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return errorf(http.StatusRequestEntityTooLarge,
			"the change needs more operations than etcd allows in one transaction (etcd's --max-txn-ops, 128 by default), nothing written")
	case errors.Is(err, rpctypes.ErrRequestTooLarge),
		// The client refuses, before sending, what etcd would refuse anyway.
		strings.Contains(err.Error(), "code = ResourceExhausted desc = trying to send message larger than max"):
		return errorf(http.StatusRequestEntityTooLarge,
			"the change is larger than etcd accepts in one request (etcd's --max-request-bytes, 1.5 MiB by default), nothing written")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

// decodeBody reads one JSON value into v: at most MaxBodyBytes, no unknown
// fields, nothing after it. An empty body leaves v as it is when
// emptyOK, and is an error otherwise.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		if emptyOK {
			return nil
		}
		return errorf(http.StatusBadRequest, "empty request body: want a JSON object")
	}
	if err == nil {
		if err = dec.Decode(new(json.RawMessage)); err == nil {
			return errorf(http.StatusBadRequest, "bad request body: more than one JSON value")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", MaxBodyBytes)
	}
	return errorf(http.StatusBadRequest, "bad request body: %v", err)
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(http.StatusBadRequest, "query parameter %s=%q: want true or false", name, v)
	}
	return b, nil
}

func intParam(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errorf(http.StatusBadRequest, "query parameter %s=%q: want a whole number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

// jobName returns the {name} path value, refusing names no job can have
// (job names are checked by jobspec: lower-case letters, digits, '-', '_').
func jobName(r *http.Request, wildcard string) (string, error) {
	name := r.PathValue(wildcard)
	if !jobspec.ValidName(name) {
		return "", errorf(http.StatusBadRequest, "%q is not a job name: job names are 1-63 lower-case letters, digits, '-' or '_'", name)
	}
	return name, nil
}

// fireID returns the fire ID named by the {job} and {suffix} path values.
func fireID(r *http.Request) (store.FireID, error) {
	job, err := jobName(r, "job")
	if err != nil {
		return store.FireID{}, err
	}
	id, err := store.ParseFireID(job + "@" + r.PathValue("suffix"))
	if err != nil {
		return store.FireID{}, errorf(http.StatusBadRequest, "%v", err)
	}
	return id, nil
}

func etcdContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), etcdTimeout)
}
