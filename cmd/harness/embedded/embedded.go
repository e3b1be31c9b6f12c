// Package embedded starts real etcd and NATS servers inside the current
// process, for `aion dev` and for integration tests. They are the same
// servers a cluster runs, not imitations; only their placement differs.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Etcd is a single-member etcd server.
type Etcd struct {
	server   *embed.Etcd
	endpoint string
}

// EtcdConfig says where an embedded etcd keeps its data and listens.
type EtcdConfig struct {
	Dir string // data directory; kept across restarts
	// ClientAddr and PeerAddr are host:port; empty picks a free port on
	// Host.
	ClientAddr string
	PeerAddr   string
	// Host is the IP address of the ports etcd picks; empty is 127.0.0.1.
	Host string
	// MaxTxnOps bounds operations per transaction (etcd's default is 128);
	// applying a job set is one transaction.
	MaxTxnOps uint
	Log       *zap.Logger
	// Name, InitialCluster ("name=http://peer,...") and Token make the
	// member part of a multi-member cluster; empty means a cluster of one.
	Name           string
	InitialCluster string
	Token          string
	// TLS, when its CertFile is set, serves clients over TLS only (an
	// https:// endpoint).
	TLS EtcdTLS
}

// EtcdTLS is the client-facing TLS of an embedded etcd: the server's
// certificate and key (PEM files) and, when ClientCAFile is set, the CA
// that must have signed every client's certificate (clients without one
// are refused).
type EtcdTLS struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

// StartEtcd starts etcd and waits until it serves clients. An address it
// picks itself (ClientAddr or PeerAddr empty) was free a moment before
// etcd binds it; if another process took it meanwhile, it picks again.
func StartEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		e, err := startEtcdOnce(ctx, cfg)
		picked := cfg.ClientAddr == "" || cfg.PeerAddr == ""
		if err == nil || !picked || !errors.Is(err, syscall.EADDRINUSE) || attempt == attempts {
			return e, err
		}
	}
}

func startEtcdOnce(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	clientURL, err := listenURL(cfg.Host, cfg.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd client address: %w", err)
	}
	peerURL, err := listenURL(cfg.Host, cfg.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd peer address: %w", err)
	}
	ec := embed.NewConfig()
	ec.Dir = cfg.Dir
	ec.Name = "aion-dev"
	if cfg.Name != "" {
		ec.Name = cfg.Name
	}
	if cfg.TLS.CertFile != "" {
		clientURL.Scheme = "https"
		ec.ClientTLSInfo = transport.TLSInfo{
			CertFile:       cfg.TLS.CertFile,
			KeyFile:        cfg.TLS.KeyFile,
			TrustedCAFile:  cfg.TLS.ClientCAFile,
			ClientCertAuth: cfg.TLS.ClientCAFile != "",
		}
	}
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = fmt.Sprintf("%s=%s", ec.Name, peerURL)
	if cfg.InitialCluster != "" {
		ec.InitialCluster = cfg.InitialCluster
	}
	if cfg.Token != "" {
		ec.InitialClusterToken = cfg.Token
	}
	if cfg.MaxTxnOps > 0 {
		ec.MaxTxnOps = cfg.MaxTxnOps
	}
	// Every fire is a write; without compaction etcd keeps every old
	// revision until its space quota runs out. An hour of history is kept.
	ec.AutoCompactionMode = "periodic"
	ec.AutoCompactionRetention = "1h"
	ec.LogLevel = "error"
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(log.Named("etcd").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	srv, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-srv.Server.ReadyNotify():
	case err := <-srv.Err():
		srv.Close()
		return nil, fmt.Errorf("etcd failed while starting: %w", err)
	case <-ctx.Done():
		srv.Close()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		srv.Close()
		return nil, errors.New("etcd did not become ready within 60s")
	}
	return &Etcd{server: srv, endpoint: clientURL.String()}, nil
}

// FreeAddr returns a loopback host:port that was free a moment ago, for
// configurations that must name every member's address up front.
func FreeAddr() (string, error) {
	u, err := listenURL("", "")
	if err != nil {
		return "", err
	}
	return u.Host, nil
}

// Endpoint is the client URL, e.g. http://127.0.0.1:23790 (https:// with
// TLS).
func (e *Etcd) Endpoint() string { return e.endpoint }

// Close stops the server.
func (e *Etcd) Close() { e.server.Close() }

// NATS is a single NATS server.
type NATS struct {
	server *natsserver.Server
}

// NATSConfig says where an embedded NATS server listens and how it is
// secured.
type NATSConfig struct {
	// Addr is host:port; empty picks a free port on Host.
	Addr string
	// Host is the IP address NATS listens on when Addr is empty; empty is
	// 127.0.0.1.
	Host string
	// Secure, when not nil, changes the server's options before it
	// starts: TLS, users, tokens, nkeys, trusted operators and accounts.
	Secure func(*natsserver.Options)
}

// StartNATS starts a plain NATS server on addr (host:port; empty picks a
// free loopback port) and waits until it accepts connections.
func StartNATS(addr string) (*NATS, error) {
	return StartNATSWith(NATSConfig{Addr: addr})
}

// StartNATSWith starts a NATS server configured by cfg and waits until it
// accepts connections.
func StartNATSWith(cfg NATSConfig) (*NATS, error) {
	addr := cfg.Addr
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, MaxPayload: 8 << 20}
	if cfg.Host != "" {
		opts.Host = cfg.Host
	}
	if cfg.Secure != nil {
		cfg.Secure(opts)
	}
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("nats address %q: %w", addr, err)
		}
		opts.Host = host
		if _, err := fmt.Sscan(port, &opts.Port); err != nil {
			return nil, fmt.Errorf("nats address %q: bad port", addr)
		}
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats server did not become ready within 30s")
	}
	return &NATS{server: srv}, nil
}

// URL is the client URL, e.g. nats://127.0.0.1:4222 (tls:// with TLS).
func (n *NATS) URL() string { return n.server.ClientURL() }

// Close stops the server and waits for it to finish.
func (n *NATS) Close() {
	n.server.Shutdown()
	n.server.WaitForShutdown()
}

// listenURL turns host:port into an http URL, choosing a free port on host
// (127.0.0.1 when empty) when addr is empty.
func listenURL(host, addr string) (*url.URL, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	if addr == "" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		addr = l.Addr().String()
		if err := l.Close(); err != nil {
			return nil, err
		}
	}
	return url.Parse("http://" + addr)
}
