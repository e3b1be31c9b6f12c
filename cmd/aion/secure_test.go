package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/cmd/harness/testcerts"
	"github.com/aionsched/aion/scheduler/store"
)

// The credentials of the secured servers the TLS tests start.
const (
	etcdRootPassword = "root-secret"
	etcdUser         = "aion"
	etcdPassword     = "etcd-secret"
	natsUser         = "aion"
	natsPassword     = "nats-secret"
	natsToken        = "nats-token-secret"
)

// startSecureEtcd starts an etcd that serves clients over TLS only,
// requires a client certificate ca signed, and has authentication on: root
// and user etcdUser, whose role may read and write the default prefix
// only. It returns the endpoint and a root client.
func startSecureEtcd(t *testing.T, ca *testcerts.CA) (string, *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srvCert := ca.Server(t, "etcd")
	e, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: t.TempDir(), Log: zap.NewNop(), TLS: embedded.EtcdTLS{
		CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, ClientCAFile: ca.CertFile,
	}})
	if err != nil {
		t.Fatalf("start etcd with TLS: %v", err)
	}
	t.Cleanup(e.Close)
	rootTLS := clientTLS(t, ca, ca.Client(t, "etcd-root"))
	setup, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, TLS: rootTLS, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer setup.Close()
	prefix := store.DefaultPrefix
	steps := []struct {
		what string
		do   func() error
	}{
		{"add role root", func() error { _, err := setup.RoleAdd(ctx, "root"); return err }},
		{"add user root", func() error { _, err := setup.UserAdd(ctx, "root", etcdRootPassword); return err }},
		{"grant root", func() error { _, err := setup.UserGrantRole(ctx, "root", "root"); return err }},
		{"add role aion", func() error { _, err := setup.RoleAdd(ctx, "aion"); return err }},
		{"grant the prefix", func() error {
			_, err := setup.RoleGrantPermission(ctx, "aion", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"add user aion", func() error { _, err := setup.UserAdd(ctx, etcdUser, etcdPassword); return err }},
		{"grant aion", func() error { _, err := setup.UserGrantRole(ctx, etcdUser, "aion"); return err }},
		{"enable auth", func() error { _, err := setup.AuthEnable(ctx); return err }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("etcd auth setup: %s: %v", s.what, err)
		}
	}
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, TLS: rootTLS, Username: "root", Password: etcdRootPassword, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcd root client: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return e.Endpoint(), admin
}

// clientTLS is a TLS client configuration trusting ca, with pair as the
// client certificate.
func clientTLS(t *testing.T, ca *testcerts.CA, pair testcerts.Pair) *tls.Config {
	t.Helper()
	cfg, err := tlsFiles{CA: ca.CertFile, Cert: pair.CertFile, Key: pair.KeyFile}.clientConfig(clientTLSSource)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startSecureNATS starts a NATS server that speaks TLS only, requires a
// client certificate ca signed, and authenticates clients as auth sets up.
func startSecureNATS(t *testing.T, ca *testcerts.CA, auth func(*natsserver.Options)) string {
	t.Helper()
	srvCert := ca.Server(t, "nats")
	tlsCfg, err := natsserver.GenTLSConfig(&natsserver.TLSConfigOpts{CertFile: srvCert.CertFile, KeyFile: srvCert.KeyFile, CaFile: ca.CertFile, Verify: true})
	if err != nil {
		t.Fatalf("NATS TLS: %v", err)
	}
	n, err := embedded.StartNATSWith(embedded.NATSConfig{Secure: func(o *natsserver.Options) {
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tlsCfg, true, true, 2
		auth(o)
	}})
	if err != nil {
		t.Fatalf("start NATS with TLS: %v", err)
	}
	t.Cleanup(n.Close)
	return n.URL()
}

// natsUserPassword lets in natsUser with natsPassword.
func natsUserPassword(o *natsserver.Options) {
	o.Users = []*natsserver.User{{Username: natsUser, Password: natsPassword}}
}

// natsTokenAuth lets in clients with natsToken.
func natsTokenAuth(o *natsserver.Options) { o.Authorization = natsToken }

// natsNKeyAuth lets in the user nkey whose seed it writes to a file, and
// returns that file.
func natsNKeyAuth(t *testing.T) (func(*natsserver.Options), string) {
	t.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := user.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := user.Seed()
	if err != nil {
		t.Fatal(err)
	}
	file := writeSecret(t, "user.nk", seed)
	return func(o *natsserver.Options) { o.Nkeys = []*natsserver.NkeyUser{{Nkey: pub}} }, file
}

// natsOperatorAuth makes an operator, an account it signs and a user of
// the account: the server trusts the operator and knows the account; the
// user's credentials file (JWT and seed) is returned.
func natsOperatorAuth(t *testing.T) (func(*natsserver.Options), string) {
	t.Helper()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("NATS operator setup: %s: %v", what, err)
		}
	}
	operator, err := nkeys.CreateOperator()
	must("operator key", err)
	operatorPub, err := operator.PublicKey()
	must("operator key", err)
	operatorJWT, err := jwt.NewOperatorClaims(operatorPub).Encode(operator)
	must("operator JWT", err)
	operatorClaims, err := jwt.DecodeOperatorClaims(operatorJWT)
	must("operator claims", err)
	account, err := nkeys.CreateAccount()
	must("account key", err)
	accountPub, err := account.PublicKey()
	must("account key", err)
	accountJWT, err := jwt.NewAccountClaims(accountPub).Encode(operator)
	must("account JWT", err)
	user, err := nkeys.CreateUser()
	must("user key", err)
	userPub, err := user.PublicKey()
	must("user key", err)
	userJWT, err := jwt.NewUserClaims(userPub).Encode(account)
	must("user JWT", err)
	seed, err := user.Seed()
	must("user seed", err)
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must("credentials file", err)
	resolver := &natsserver.MemAccResolver{}
	must("store the account", resolver.Store(accountPub, accountJWT))
	return func(o *natsserver.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{operatorClaims}
		o.AccountResolver = resolver
	}, writeSecret(t, "user.creds", creds)
}

// writeSecret writes data to a 0600 file named name in a temporary
// directory and returns its path.
func writeSecret(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// aionProcess is a command of the aion binary running in this process
// (aion scheduler, aion executor) until it ends or the test does.
type aionProcess struct {
	name   string
	output clustertest.Buffer
	done   chan struct{}
	code   int
}

// startAion runs args as main would, in a goroutine; the test's end
// cancels it and waits for it. Its output is logged if the test fails.
func startAion(t *testing.T, name string, args ...string) *aionProcess {
	t.Helper()
	p := &aionProcess{name: name, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(p.done)
		p.code = run(ctx, args, &p.output, &p.output)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.output.String())
		}
	})
	return p
}

// exited waits up to timeout for the command to end and returns its exit
// code and output; ok is false if it still runs.
func (p *aionProcess) exited(timeout time.Duration) (code int, output string, ok bool) {
	select {
	case <-p.done:
		return p.code, p.output.String(), true
	case <-time.After(timeout):
		return 0, p.output.String(), false
	}
}

// yamlConfig writes a config file of the given lines (YAML) and returns
// its path.
func yamlConfig(t *testing.T, format string, args ...any) string {
	t.Helper()
	return writeSecret(t, "aion.yaml", []byte(fmt.Sprintf(format, args...)))
}
