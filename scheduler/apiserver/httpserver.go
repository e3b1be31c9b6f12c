package apiserver

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// HTTPConfig bounds what one client can hold of the API's HTTP server:
// how long it may take to send a request, how long an idle connection
// stays open, how large the headers may be, and how many connections are
// served at once (past it, new connections wait to be accepted).
type HTTPConfig struct {
	// ReadHeaderTimeout is how long a client has to send a request's
	// headers (a client sending them byte by byte is cut off).
	ReadHeaderTimeout time.Duration
	// ReadTimeout is how long a client has to send a whole request, body
	// included (a client trickling an apply body is cut off). It does not
	// bound the handler's work once the body is read, nor a long answer
	// (TestHTTPServer_SlowIdleAndExcessClientsAreCut checks a response
	// streamed past it). Following a log is a series of short requests.
	ReadTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request before the server closes it.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int
	// MaxConnections is how many connections are served at once (0: no limit).
	MaxConnections int
}

// DefaultHTTPConfig is the HTTP server's defaults, as configs/aion.yaml
// documents them.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConnections:    512,
	}
}

// Validate checks the limits: every timeout and the header bound
// positive, the connection cap not negative.
func (c HTTPConfig) Validate() error {
	var errs []error
	if c.ReadHeaderTimeout <= 0 {
		errs = append(errs, fmt.Errorf("scheduler.api_read_header_timeout: %s: want more than 0", c.ReadHeaderTimeout))
	}
	if c.ReadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("scheduler.api_read_timeout: %s: want more than 0", c.ReadTimeout))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("scheduler.api_idle_timeout: %s: want more than 0", c.IdleTimeout))
	}
	if c.MaxHeaderBytes <= 0 {
		errs = append(errs, fmt.Errorf("scheduler.api_max_header_bytes: %d: want more than 0", c.MaxHeaderBytes))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("scheduler.api_max_connections: %d: want 0 (no limit) or more", c.MaxConnections))
	}
	return errors.Join(errs...)
}

// Server is an http.Server of h with these limits.
func (c HTTPConfig) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
}

// Listener caps ln at MaxConnections connections at once: a connection
// past the cap is not accepted until another closes.
func (c HTTPConfig) Listener(ln net.Listener) net.Listener {
	if c.MaxConnections == 0 {
		return ln
	}
	return netutil.LimitListener(ln, c.MaxConnections)
}
