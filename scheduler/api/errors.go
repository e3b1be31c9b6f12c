package api

import (
	"errors"
	"net/http"
)

// Errors a Client call can match with errors.Is. An *Error (an answer of
// 400 and up) matches the sentinel of its status; an *UnreachableError
// (no answer at all) matches ErrUnreachable.
var (
	ErrBadRequest   = errors.New("bad request")                  // 400: the request is wrong; Problems may list why
	ErrUnauthorized = errors.New("unauthorized")                 // 401: no token, or one that is not valid (unknown or revoked)
	ErrForbidden    = errors.New("forbidden")                    // 403: the token's role may not do this, or the Host is not the API's
	ErrNotFound     = errors.New("not found")                    // 404: no such job or fire (yet)
	ErrConflict     = errors.New("conflict")                     // 409: the state does not allow it now; often: try again
	ErrTooLarge     = errors.New("too large")                    // 413: a body or a change beyond a limit
	ErrServer       = errors.New("server error")                 // 500 and any other 5xx not below
	ErrBadGateway   = errors.New("executor did not answer")      // 502: the executor holding a fire's output did not answer
	ErrUnavailable  = errors.New("service unavailable")          // 503: etcd did not answer in time
	ErrUnreachable  = errors.New("the API could not be reached") // no answer: no server listens, or the network failed
)

// Error is an answer of the API with a status of 400 or more.
type Error struct {
	Status  int    // the HTTP status
	Message string // the answer's "error"
	// Problems lists the individual problems, one line each (for job files
	// "file:line:col: field: message").
	Problems []string
}

// Error returns the server's message.
func (e *Error) Error() string { return e.Message }

// Is matches the sentinel of the error's status.
func (e *Error) Is(target error) bool {
	switch e.Status {
	case http.StatusBadRequest:
		return target == ErrBadRequest
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrForbidden
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusRequestEntityTooLarge:
		return target == ErrTooLarge
	case http.StatusBadGateway:
		return target == ErrBadGateway
	case http.StatusServiceUnavailable:
		return target == ErrUnavailable
	}
	return e.Status >= 500 && target == ErrServer
}

// UnreachableError says that a request got no answer at all.
type UnreachableError struct {
	URL string // the API's base URL
	Err error  // what the transport reported
}

func (e *UnreachableError) Error() string {
	return "cannot reach the Aion API at " + e.URL + ": " + e.Err.Error()
}

// Unwrap returns the transport's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Is matches ErrUnreachable.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }
