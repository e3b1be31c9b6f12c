package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client settings.
const (
	// DefaultTimeout bounds one call of a Client made without an
	// *http.Client; the server answers within about 10 s (its etcd timeout).
	DefaultTimeout = 30 * time.Second
	// maxAnswerBytes bounds an answer the client reads.
	maxAnswerBytes = 64 << 20
)

// Client calls the API of one Aion cluster (any scheduler serves it). Its
// methods return the answer decoded, an *Error for an answer of 400 and
// up, an *UnreachableError when no answer came, or the context's error.
// It is safe for concurrent use.
type Client struct {
	base  string // the server URL without a trailing slash
	http  *http.Client
	token string // sent as Authorization: Bearer, when not empty
}

// ClientOption sets an optional part of a Client.
type ClientOption func(*Client)

// WithToken makes every request carry the token's secret in the
// Authorization header (Bearer). Every route but GET /healthz needs one.
func WithToken(secret string) ClientOption {
	return func(c *Client) { c.token = secret }
}

// NewClient returns a client of the API at baseURL (http:// or https://,
// e.g. http://127.0.0.1:8080). hc sends the requests; nil means a client
// with DefaultTimeout.
func NewClient(baseURL string, hc *http.Client, opts ...ClientOption) (*Client, error) {
	base := strings.TrimRight(baseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: want an http:// or https:// URL such as http://127.0.0.1:8080", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	c := &Client{base: base, http: hc}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

// BaseURL is the URL the client sends to, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// call is one request: the route with its wildcards filled by values, the
// query, body as JSON (none when nil); a 2xx answer is decoded into out
// (when not nil).
type call struct {
	route  Route
	values []string
	query  url.Values
	body   any
	out    any
}

// do sends the call and decodes its answer.
func (c *Client) do(ctx context.Context, cl call) error {
	path, _, _ := cl.route.fill(cl.values)
	method := cl.route.Method()
	target := c.base + path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var r io.Reader
	if cl.body != nil {
		data, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("encode the request body: %w", err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, target, err)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &UnreachableError{URL: c.base, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(method, path, resp, data)
	}
	if cl.out != nil {
		if err := json.Unmarshal(data, cl.out); err != nil {
			return fmt.Errorf("bad answer to %s %s from %s: %w", method, path, c.base, err)
		}
	}
	return nil
}

// answerError turns an answer other than 2xx into an *Error: the server's
// ErrorResponse, or the status and body when it sent something else.
func answerError(method, path string, resp *http.Response, data []byte) *Error {
	var e ErrorResponse
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	return &Error{Status: resp.StatusCode, Message: e.Error, Problems: e.Problems}
}

// Health asks whether the server answers (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	if err := c.do(ctx, call{route: RouteHealth}); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	return nil
}
