package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

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

// wrap authorizes a request for route rt (its token and the route's role),
// checks its Content-Type, runs h, and turns an error into a JSON error
// answer: an httpError as it says, an etcd timeout as 503, anything else
// as 500 (logged).
func (s *Server) wrap(rt api.Route, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	pattern := string(rt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		authorized, err := s.authorize(rt, r)
		if err == nil {
			err = checkContentType(r)
		}
		if err == nil {
			err = h(w, authorized)
		}
		if err == nil {
			s.log.Debug("request", zap.String("route", pattern), zap.String("path", r.URL.Path), zap.Duration("took", time.Since(start)))
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
			if he.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="aion"`)
			}
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
		writeJSON(w, he.status, api.ErrorResponse{Error: he.msg, Problems: he.problems})
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
	data, err := json.Marshal(v)
	if err != nil {
		// Only a value encoding/json cannot encode gets here: a bug of
		// this package, which the tests of every route would show.
		status = http.StatusInternalServerError
		data = []byte(`{"error":"the server could not encode its answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n')) // the client went away; nothing to do
}

// decodeBody reads one JSON value into v: at most api.MaxBodyBytes, no unknown
// fields, nothing after it. An empty body leaves v as it is when
// emptyOK, and is an error otherwise.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, api.MaxBodyBytes))
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
		return errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", api.MaxBodyBytes)
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
