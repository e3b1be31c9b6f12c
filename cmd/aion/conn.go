package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// clusterConn is how a scheduler or an executor reaches etcd and NATS:
// where, over which TLS, as whom.
type clusterConn struct {
	etcdEndpoints []string
	etcdPrefix    string // read at connect, to check credentials ("": not checked)
	etcdTLS       *tls.Config
	etcdUser      string
	etcdPassword  string
	natsURL       string
	natsOptions   []nats.Option
}

// plainConn reaches etcd and NATS without TLS or credentials, as aion dev
// reaches its embedded servers on loopback.
func plainConn(etcdEndpoint, natsURL string) clusterConn {
	return clusterConn{etcdEndpoints: []string{etcdEndpoint}, natsURL: natsURL}
}

// clusterSecurityFlags adds the flags of TLS and credentials for etcd and
// NATS. Passwords and tokens are better given in the config file or the
// environment (AION_ETCD_PASSWORD, AION_NATS_PASSWORD, AION_NATS_TOKEN):
// other users of the machine see command lines.
func clusterSecurityFlags(cmd *cobra.Command) {
	etcdSecurityFlags(cmd)
	f := cmd.Flags()
	f.String("nats-ca", "", "trust the NATS server's certificate when this CA (PEM file) signed it (setting any --nats-ca/cert/key requires TLS)")
	f.String("nats-cert", "", "client certificate (PEM file) for a NATS server that requires one (with --nats-key)")
	f.String("nats-key", "", "the private key of --nats-cert (PEM file)")
	f.String("nats-user", "", "NATS user (with --nats-password)")
	f.String("nats-password", "", "password of --nats-user (shown in ps: prefer AION_NATS_PASSWORD or the config file)")
	f.String("nats-token", "", "NATS authentication token (shown in ps: prefer AION_NATS_TOKEN or the config file)")
	f.String("nats-nkey", "", "NATS nkey seed file (a user nkey, SU...)")
	f.String("nats-creds", "", "NATS credentials file (a user JWT and its nkey seed, as nsc writes it)")
	for flag, key := range map[string]string{
		"nats-ca": "nats.tls.ca", "nats-cert": "nats.tls.cert", "nats-key": "nats.tls.key",
		"nats-user": "nats.user", "nats-password": "nats.password", "nats-token": "nats.token",
		"nats-nkey": "nats.nkey", "nats-creds": "nats.creds",
	} {
		configFlag(f, flag, key)
	}
}

// etcdSecurityFlags adds the flags of TLS and credentials for etcd alone,
// for commands that reach etcd but not NATS (aion token create --etcd).
func etcdSecurityFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("etcd-ca", "", "trust etcd's certificate when this CA (PEM file) signed it (default: the system's roots; needs https:// endpoints)")
	f.String("etcd-cert", "", "client certificate (PEM file) for an etcd that requires one (with --etcd-key)")
	f.String("etcd-key", "", "the private key of --etcd-cert (PEM file)")
	f.String("etcd-username", "", "etcd user, for an etcd with authentication on")
	f.String("etcd-password", "", "password of --etcd-username (shown in ps: prefer AION_ETCD_PASSWORD or the config file)")
	for flag, key := range map[string]string{
		"etcd-ca": "etcd.tls.ca", "etcd-cert": "etcd.tls.cert", "etcd-key": "etcd.tls.key",
		"etcd-username": "etcd.username", "etcd-password": "etcd.password",
	} {
		configFlag(f, flag, key)
	}
}

// clusterConn reads how to reach etcd and NATS from the configuration. A
// file that cannot be read, holds no valid PEM, seed or credentials, or
// settings that do not go together, are a usage error naming the key.
func (a *app) clusterConn() (clusterConn, error) {
	c, err := a.etcdConn()
	if err != nil {
		return c, err
	}
	c.natsURL = a.cfg.NATS.URL
	if c.natsOptions, err = a.natsOptions(); err != nil {
		return c, &exitError{code: exitUsage, err: err}
	}
	return c, nil
}

// etcdConn reads how to reach etcd from the configuration, as clusterConn
// does, leaving NATS out.
func (a *app) etcdConn() (clusterConn, error) {
	c := clusterConn{etcdEndpoints: a.cfg.Etcd.Endpoints, etcdPrefix: a.cfg.Etcd.Prefix}
	var err error
	if c.etcdTLS, err = a.cfg.Etcd.TLS.clientConfig(etcdTLSSource); err != nil {
		return c, &exitError{code: exitUsage, err: err}
	}
	if c.etcdTLS != nil {
		for _, ep := range c.etcdEndpoints {
			if !strings.HasPrefix(ep, "https://") {
				return c, &exitError{code: exitUsage, err: fmt.Errorf("etcd.endpoints (--etcd): %s is not https://, but etcd.tls is set: the client speaks TLS only to https:// endpoints", ep)}
			}
		}
	}
	c.etcdUser, c.etcdPassword = a.cfg.Etcd.Username, a.cfg.Etcd.Password
	if (c.etcdUser == "") != (c.etcdPassword == "") {
		return c, &exitError{code: exitUsage, err: errors.New("etcd.username (--etcd-username) and etcd.password (AION_ETCD_PASSWORD, --etcd-password) go together: one is set, the other is not")}
	}
	return c, nil
}

// natsOptions are the NATS client's TLS and credentials: at most one of
// user and password, token, nkey seed file or credentials file.
func (a *app) natsOptions() ([]nats.Option, error) {
	n := a.cfg.NATS
	var opts []nats.Option
	tlsCfg, err := n.TLS.clientConfig(natsTLSSource)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, nats.Secure(tlsCfg))
	}
	var ways []string
	if n.User != "" || n.Password != "" {
		ways = append(ways, "nats.user")
		if n.User == "" || n.Password == "" {
			return nil, errors.New("nats.user (--nats-user) and nats.password (AION_NATS_PASSWORD, --nats-password) go together: one is set, the other is not")
		}
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	}
	if n.Token != "" {
		ways = append(ways, "nats.token")
		opts = append(opts, nats.Token(n.Token))
	}
	if n.NKey != "" {
		ways = append(ways, "nats.nkey")
		opt, err := nats.NkeyOptionFromSeed(n.NKey)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey (--nats-nkey) %s: %w", n.NKey, err)
		}
		opts = append(opts, opt)
	}
	if n.Creds != "" {
		ways = append(ways, "nats.creds")
		if err := checkCredsFile(n.Creds); err != nil {
			return nil, fmt.Errorf("nats.creds (--nats-creds): %w", err)
		}
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if len(ways) > 1 {
		return nil, fmt.Errorf("%s are set: NATS takes one way of logging in (user and password, token, nkey or creds)", strings.Join(ways, " and "))
	}
	return opts, nil
}

// checkCredsFile reads a NATS credentials file as the client will on
// every connect, so that a bad one is an error at start.
func checkCredsFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	token, err := nkeys.ParseDecoratedJWT(data)
	if err == nil {
		_, err = jwt.DecodeUserClaims(token)
	}
	if err != nil {
		return fmt.Errorf("%s: no valid user JWT: %w", file, err)
	}
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return fmt.Errorf("%s: no nkey seed: %w", file, err)
	}
	kp.Wipe()
	return nil
}

// connect opens the etcd and NATS clients and checks that both answer:
// etcd counts the keys under the prefix, so that missing credentials or
// permissions are an error now rather than at the first write.
func (a *app) connect(ctx context.Context, c clusterConn) (*clientv3.Client, *nats.Conn, error) {
	cli, err := a.connectEtcd(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	opts := append([]nats.Option{nats.Name("aion"), nats.MaxReconnects(-1)}, c.natsOptions...)
	nc, err := nats.Connect(c.natsURL, opts...)
	if err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("cannot reach NATS at %s: %w%s", c.natsURL, err, natsHint(err))
	}
	return cli, nc, nil
}

// The etcd client pings a member it has calls waiting on once the
// connection has been silent for etcdKeepAlive, and drops the connection
// when the ping is not answered within etcdKeepAliveTimeout; its calls
// then go to the other members. A member that hangs (SIGSTOP, a stalled
// disk, a paused VM) keeps its connections open: without the pings, the
// calls routed to it waited until their deadlines, and its watches (the
// election's among them) forever, so that no scheduler led while it hung
// although the other members held the quorum (TestScenario_EtcdMemberSIGSTOP).
// 10 s is the shortest interval gRPC allows.
const (
	etcdKeepAlive        = 10 * time.Second
	etcdKeepAliveTimeout = 3 * time.Second
)

// connectEtcd opens the etcd client and checks that it answers (checkEtcd).
func (a *app) connectEtcd(ctx context.Context, c clusterConn) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: c.etcdEndpoints, DialTimeout: 5 * time.Second, Context: ctx,
		DialKeepAliveTime: etcdKeepAlive, DialKeepAliveTimeout: etcdKeepAliveTimeout,
		TLS: c.etcdTLS, Username: c.etcdUser, Password: c.etcdPassword,
		Logger: a.log.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w%s", c.etcdEndpoints, err, etcdHint(ctx, c, err))
	}
	if err := checkEtcd(ctx, cli, c); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

// checkEtcd asks the first endpoint for its status, then counts the keys
// under the prefix (unless it is empty).
func checkEtcd(ctx context.Context, cli *clientv3.Client, c clusterConn) error {
	endpoint := c.etcdEndpoints[0]
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Status(callCtx, endpoint); err != nil {
		return fmt.Errorf("cannot reach etcd at %s: %w%s", endpoint, err, etcdHint(ctx, c, err))
	}
	if c.etcdPrefix == "" {
		return nil
	}
	if _, err := cli.Get(callCtx, c.etcdPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd at %s: cannot read %s: %w%s", endpoint, c.etcdPrefix, err, etcdHint(ctx, c, err))
	}
	return nil
}

// etcdHint says what to configure after an etcd error of credentials or
// TLS ("" for others). A timeout may be a TLS handshake that failed: the
// first endpoint is probed to find out.
func etcdHint(ctx context.Context, c clusterConn, err error) string {
	switch {
	case errors.Is(err, rpctypes.ErrUserEmpty):
		return " (etcd has authentication on: set etcd.username and etcd.password)"
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return " (check etcd.username and etcd.password)"
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return " (the etcd user needs a role that may read and write the key prefix; without etcd.username, etcd takes the client certificate's common name as the user)"
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		if hint := probeTLS(ctx, c.etcdEndpoints[0], c.etcdTLS, "etcd", etcdTLSSource); hint != "" {
			return "; " + hint
		}
	}
	return ""
}

// natsHint says what to configure after a NATS error of credentials or
// TLS ("" for others).
func natsHint(err error) string {
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return " (check nats.user and nats.password, nats.token, nats.nkey or nats.creds)"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return " (nats.tls is set, but the server does not speak TLS)"
	}
	if hint := tlsHint(err, "the NATS server", natsTLSSource); hint != "" {
		return "; " + hint
	}
	return ""
}

// noteDevIgnoresSecurity says which TLS and credential settings (from the
// config file or the environment) aion dev does not use: its etcd, NATS
// and API are plain, on loopback.
func (a *app) noteDevIgnoresSecurity() {
	e, n := a.cfg.Etcd, a.cfg.NATS
	var ignored []string
	for _, s := range []struct {
		key string
		set bool
	}{
		{"etcd.tls", e.TLS.set()},
		{"etcd.username and etcd.password", e.Username != "" || e.Password != ""},
		{"nats.tls", n.TLS.set()},
		{"nats.user and nats.password", n.User != "" || n.Password != ""},
		{"nats.token", n.Token != ""},
		{"nats.nkey", n.NKey != ""},
		{"nats.creds", n.Creds != ""},
		{"scheduler.tls", a.cfg.Scheduler.TLS.set()},
	} {
		if s.set {
			ignored = append(ignored, s.key)
		}
	}
	if len(ignored) > 0 {
		a.note(fmt.Sprintf("dev: %s ignored (from the config file or the environment): dev's etcd, NATS and API are plain, on loopback", strings.Join(ignored, ", ")))
	}
}
