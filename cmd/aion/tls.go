package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// tlsFiles are the PEM files of a TLS client: the CA that signed the
// server's certificate (empty: the system's roots) and, for a server that
// requires client certificates, this client's certificate and key.
type tlsFiles struct {
	CA   string `mapstructure:"ca"`
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// serverTLSFiles are the PEM files of a TLS server: its certificate and
// key and, to require client certificates (mTLS), the CA that must have
// signed them.
type serverTLSFiles struct {
	Cert     string `mapstructure:"cert"`
	Key      string `mapstructure:"key"`
	ClientCA string `mapstructure:"client_ca"`
}

// tlsSource names where a set of TLS files comes from, for errors: the
// config key prefix (etcd.tls.) and the flag prefix (--etcd-).
type tlsSource struct {
	key, flag string
}

// name is how an error names one field: etcd.tls.ca (--etcd-ca).
func (s tlsSource) name(field string) string {
	return fmt.Sprintf("%s%s (%s%s)", s.key, field, s.flag, strings.ReplaceAll(field, "_", "-"))
}

// The sources of the TLS files, as configs/aion.yaml and the flags name them.
var (
	clientTLSSource = tlsSource{key: "client.tls.", flag: "--"}
	apiTLSSource    = tlsSource{key: "scheduler.tls.", flag: "--tls-"}
	etcdTLSSource   = tlsSource{key: "etcd.tls.", flag: "--etcd-"}
	natsTLSSource   = tlsSource{key: "nats.tls.", flag: "--nats-"}
)

// minTLSVersion is the oldest TLS version Aion speaks, as server and client.
const minTLSVersion = tls.VersionTLS12

// set says whether any file is given.
func (f tlsFiles) set() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// clientConfig is the TLS configuration of a client with these files; nil
// when none is given. A file that cannot be read or holds no valid PEM is
// an error naming its key and the file.
func (f tlsFiles) clientConfig(src tlsSource) (*tls.Config, error) {
	if !f.set() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: minTLSVersion}
	if f.CA != "" {
		pool, err := loadCertPool(src.name("ca"), f.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" || f.Key != "" {
		pair, err := loadKeyPair(src, "cert", f.Cert, "key", f.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// set says whether any file is given.
func (f serverTLSFiles) set() bool { return f.Cert != "" || f.Key != "" || f.ClientCA != "" }

// serverConfig is the TLS configuration of a server with these files; nil
// when none is given. With a client CA, every client must present a
// certificate it signed.
func (f serverTLSFiles) serverConfig(src tlsSource) (*tls.Config, error) {
	if !f.set() {
		return nil, nil
	}
	if f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("%s and %s are needed to serve TLS", src.name("cert"), src.name("key"))
	}
	pair, err := loadKeyPair(src, "cert", f.Cert, "key", f.Key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: minTLSVersion, Certificates: []tls.Certificate{pair}}
	if f.ClientCA != "" {
		pool, err := loadCertPool(src.name("client_ca"), f.ClientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loadCertPool reads the CA certificates in file (PEM), named name in errors.
func loadCertPool(name, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: %s holds no valid PEM certificate", name, file)
	}
	return pool, nil
}

// loadKeyPair reads a certificate and its private key (PEM files); both
// are needed.
func loadKeyPair(src tlsSource, certField, certFile, keyField, keyFile string) (tls.Certificate, error) {
	certName, keyName := src.name(certField), src.name(keyField)
	switch {
	case certFile == "":
		return tls.Certificate{}, fmt.Errorf("%s is set but %s is not: a key goes with its certificate", keyName, certName)
	case keyFile == "":
		return tls.Certificate{}, fmt.Errorf("%s is set but %s is not: a certificate goes with its key", certName, keyName)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", certName, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", keyName, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s %s with %s %s: %w", certName, certFile, keyName, keyFile, err)
	}
	return pair, nil
}

// apiTLSFlags adds the flags of the API's own TLS (aion scheduler).
func apiTLSFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("tls-cert", "", "serve the API over HTTPS with this certificate (PEM file; with --tls-key)")
	f.String("tls-key", "", "the private key of --tls-cert (PEM file)")
	f.String("tls-client-ca", "", "require client certificates signed by this CA (PEM file) from every API client (mTLS)")
	configFlag(f, "tls-cert", "scheduler.tls.cert")
	configFlag(f, "tls-key", "scheduler.tls.key")
	configFlag(f, "tls-client-ca", "scheduler.tls.client_ca")
}

// clientTLSFlags adds the flags of a client command's TLS to the API.
func clientTLSFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("ca", "", "trust the API's certificate when this CA (PEM file) signed it, for an https:// --server (default: the system's roots)")
	f.String("cert", "", "client certificate (PEM file) for an API that requires one (mTLS; with --key)")
	f.String("key", "", "the private key of --cert (PEM file)")
	configFlag(f, "ca", "client.tls.ca")
	configFlag(f, "cert", "client.tls.cert")
	configFlag(f, "key", "client.tls.key")
}

// apiTransport is the HTTP transport of the client commands: the default
// one, with client.tls when it is set (for an https:// server only).
func (a *app) apiTransport() (http.RoundTripper, error) {
	cfg, err := a.cfg.Client.TLS.clientConfig(clientTLSSource)
	switch {
	case err != nil:
		return nil, err
	case cfg == nil:
		return http.DefaultTransport, nil
	case !strings.HasPrefix(a.cfg.Server, "https://"):
		return nil, fmt.Errorf("client.tls (--ca, --cert, --key) is set, but --server %s is not https://", a.cfg.Server)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = cfg
	return transport, nil
}

// apiTLSConfig is the API's TLS configuration (scheduler.tls), nil when
// it is served plain. A bad file is a usage error.
func (a *app) apiTLSConfig() (*tls.Config, error) {
	cfg, err := a.cfg.Scheduler.TLS.serverConfig(apiTLSSource)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

// serveTLS wraps ln to serve TLS with cfg (ln as it is when cfg is nil)
// and says the scheme of the API's URL.
func serveTLS(ln net.Listener, cfg *tls.Config) (net.Listener, string) {
	if cfg == nil {
		return ln, "http"
	}
	return tls.NewListener(ln, cfg), "https"
}

// tlsHint says what to configure after a TLS failure of a connection to
// what (the API, etcd, NATS) whose files come from src; "" when err is not
// one. Certificate errors are recognized by type; an alert the server sent
// (it refused this client's certificate, or its absence) by its text, the
// only form crypto/tls gives it.
func tlsHint(err error, what string, src tlsSource) string {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("%s's certificate is not signed by a CA this client trusts: set %s to the CA that signed it", what, src.name("ca"))
	case errors.As(err, &hostname):
		return fmt.Sprintf("%s's certificate is not for the address connected to: connect to a name or address it is issued for", what)
	case errors.As(err, &invalid):
		return fmt.Sprintf("%s's certificate is not valid", what)
	case errors.As(err, &opErr) && opErr.Op == "remote error" && strings.Contains(opErr.Err.Error(), "tls:"),
		// Under TLS 1.3 the server checks the client's certificate after the
		// handshake; its alert may be lost when it closes the connection first.
		strings.Contains(err.Error(), "connection closed by remote after TLS handshake"):
		return fmt.Sprintf("%s refused this client's TLS connection: it may require a client certificate signed by a CA it trusts: set %s and %s", what, src.name("cert"), src.name("key"))
	}
	return ""
}

// probeTLS finds out why a connection to endpoint (an http:// or https://
// URL) failed when the client only saw a timeout, as gRPC reports a
// failed TLS handshake: it makes the TLS handshake itself with cfg (nil:
// the system's roots) and reads once, which is when a server refusing the
// client's certificate says so under TLS 1.3. It returns what to configure,
// or "" when the handshake succeeds or fails for another reason.
func probeTLS(ctx context.Context, endpoint string, cfg *tls.Config, what string, src tlsSource) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if u.Scheme == "http" {
		// Does a TLS server answer the plain endpoint? (No verification:
		// only whether it speaks TLS matters.)
		probe := &tls.Dialer{Config: &tls.Config{MinVersion: minTLSVersion, InsecureSkipVerify: true}} //nolint:gosec // a probe that sends nothing
		conn, err := probe.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return ""
		}
		conn.Close()
		return fmt.Sprintf("%s at %s speaks TLS: use an https:// endpoint and set %s to the CA that signed its certificate", what, u.Host, src.name("ca"))
	}
	if cfg == nil {
		cfg = &tls.Config{MinVersion: minTLSVersion}
	}
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return tlsHint(err, what, src)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return ""
	}
	_, err = conn.Read(make([]byte, 1))
	return tlsHint(err, what, src)
}
