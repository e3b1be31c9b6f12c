package apiserver

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
)

// What keeps a web page from using the API of a scheduler the browser can
// reach (cross-site request forgery, DNS rebinding). Credentials come only
// from the Authorization header (authorize), which a page cannot make a
// browser send to another site without a CORS preflight, and the API
// answers no preflight: it sets no Access-Control-* header at all. On top
// of that, bodies must be JSON and the Host must be the API's own.

// checkHost refuses a request whose Host is not the API's: when it came
// in on a loopback address, the Host must be localhost, 127.0.0.1 or
// [::1] (any port) or one of the configured names (scheduler.api_hosts);
// on another address, one of the configured names when any are set. A
// page on a foreign name that resolves to 127.0.0.1 (DNS rebinding)
// sends its own name as Host, and is refused.
func (s *Server) checkHost(r *http.Request) *httpError {
	loopback := false
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if tcp, ok := addr.(*net.TCPAddr); ok {
			loopback = tcp.IP.IsLoopback()
		}
	}
	if !loopback && len(s.hosts) == 0 {
		return nil
	}
	host := hostName(r.Host)
	for _, h := range s.hosts {
		if strings.EqualFold(host, h) {
			return nil
		}
	}
	if loopback && (host == "localhost" || host == "127.0.0.1" || host == "::1") {
		return nil
	}
	allowed := strings.Join(s.hosts, ", ")
	if loopback {
		allowed = strings.Join(append([]string{"localhost", "127.0.0.1", "[::1]"}, s.hosts...), ", ")
	}
	return errorf(http.StatusForbidden, "Host %q is not a name of this API (it answers to %s; add names with scheduler.api_hosts): a foreign Host is how a web page reaches a local API by DNS rebinding", r.Host, allowed)
}

// hostName is the host of a Host header without its port or brackets,
// in lower case.
func hostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

// checkContentType refuses a request that has a body (or says what its
// body is) in anything but application/json: the kinds of body an HTML
// form or a simple cross-site fetch can send are never accepted.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return nil
	}
	if ct == "" {
		return errorf(http.StatusUnsupportedMediaType, "the request has a body but no Content-Type: send Content-Type: application/json")
	}
	media, _, err := mime.ParseMediaType(ct)
	if err != nil || media != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q: the API takes application/json bodies only", ct)
	}
	return nil
}

// ValidateHosts checks names for scheduler.api_hosts: host names or IP
// addresses without a scheme, port or path.
func ValidateHosts(names []string) error {
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "/:@ ") && net.ParseIP(strings.Trim(n, "[]")) == nil {
			return fmt.Errorf("scheduler.api_hosts: %q: want a host name or IP address, without scheme, port or path", n)
		}
	}
	return nil
}
