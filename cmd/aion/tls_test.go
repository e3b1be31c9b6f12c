package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/cmd/harness/testcerts"
	"github.com/aionsched/aion/scheduler/store"
)

// secureFiles are what the TLS tests hand aion: a CA that signed every
// server's certificate, a client certificate, and the API's certificate.
type secureFiles struct {
	ca     *testcerts.CA
	client testcerts.Pair
	api    testcerts.Pair
}

func newSecureFiles(t *testing.T) secureFiles {
	t.Helper()
	ca := testcerts.NewCA(t, "aion-test")
	return secureFiles{ca: ca, client: ca.Client(t, "aion-client"), api: ca.Server(t, "api")}
}

// A scheduler and an executor reach etcd (TLS, client certificate, user and
// password) and NATS (TLS, client certificate, user and password), the
// scheduler serves its API over HTTPS requiring client certificates, and a
// job applied and run through that API runs to its end.
func TestTLS_SchedulerAndExecutorRunAJobOverTLSWithCredentials(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end, a scheduler and an executor over TLS")
	f := newSecureFiles(t)
	etcdURL, admin := startSecureEtcd(t, f.ca)
	natsURL := startSecureNATS(t, f.ca, natsUserPassword)
	// Passwords come from the file (NATS) and the environment (etcd).
	config := yamlConfig(t, `etcd:
  endpoints: [%q]
  username: %s
  tls: {ca: %q, cert: %q, key: %q}
nats:
  url: %q
  user: %s
  password: %s
  tls: {ca: %q, cert: %q, key: %q}
scheduler:
  tls: {cert: %q, key: %q, client_ca: %q}
`, etcdURL, etcdUser, f.ca.CertFile, f.client.CertFile, f.client.KeyFile,
		natsURL, natsUser, natsPassword, f.ca.CertFile, f.client.CertFile, f.client.KeyFile,
		f.api.CertFile, f.api.KeyFile, f.ca.CertFile)
	t.Setenv("AION_ETCD_PASSWORD", etcdPassword)
	addr := clustertest.FreeAddr(t)
	startAion(t, "scheduler", "scheduler", "--config", config, "--id", "s1", "--listen", addr)
	startAion(t, "executor", "executor", "--config", config, "--node-id", "x1", "--output-dir", t.TempDir())
	waitNode(t, admin, "x1")

	server := "https://" + addr
	secret, err := store.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	tok := store.Token{Name: "tls-admin", Role: "admin", CreatedAt: time.Now(), CreatedBy: "tls test"}
	if err := store.CreateToken(context.Background(), admin, store.Keys{Prefix: store.DefaultPrefix}, tok, secret); err != nil {
		t.Fatalf("create token: %v", err)
	}
	cliTLS := []string{"--server", server, "--ca", f.ca.CertFile, "--cert", f.client.CertFile, "--key", f.client.KeyFile, "--token", secret}
	clustertest.WaitFor(t, 30*time.Second, "the HTTPS API", func() bool {
		code, _, _ := runAion(t, append([]string{"nodes"}, cliTLS...)...)
		return code == 0
	})
	jobs := t.TempDir()
	writeFile(t, jobs, "hello.yaml", "name: hello\nschedule: manual\ncommand: echo hello over tls\n")
	if code, stdout, stderr := runAion(t, append([]string{"apply", "-f", jobs}, cliTLS...)...); code != 0 {
		t.Fatalf("apply over HTTPS: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	code, stdout, stderr := runAion(t, append([]string{"run", "hello", "--wait"}, cliTLS...)...)
	if code != 0 || !strings.Contains(stdout, "hello over tls") {
		t.Fatalf("run --wait over HTTPS: exit %d, want 0 and the job's output\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	fires := readFires(t, admin, "hello")
	if len(fires) != 1 || fires[0].State != store.FireSucceeded || fires[0].Node != "x1" {
		t.Errorf("fire records of hello: %+v; want one, succeeded on x1", fires)
	}

	t.Run("the CLI without --ca does not trust the API", func(t *testing.T) {
		code, _, stderr := runAion(t, "nodes", "--server", server)
		if code != exitAion || !strings.Contains(stderr, "not signed by a CA this client trusts") || !strings.Contains(stderr, "client.tls.ca (--ca)") {
			t.Errorf("nodes without --ca: exit %d, stderr %q; want %d, an unknown authority and --ca named", code, stderr, exitAion)
		}
	})
	t.Run("with client_ca set, a client without a certificate is refused", func(t *testing.T) {
		code, _, stderr := runAion(t, "nodes", "--server", server, "--ca", f.ca.CertFile)
		if code != exitAion || !strings.Contains(stderr, "certificate required") || !strings.Contains(stderr, "client.tls.cert (--cert)") {
			t.Errorf("nodes without --cert: exit %d, stderr %q; want %d, the refusal and --cert named", code, stderr, exitAion)
		}
	})
	t.Run("a client certificate another CA signed is refused", func(t *testing.T) {
		other := testcerts.NewCA(t, "other").Client(t, "intruder")
		code, _, stderr := runAion(t, "nodes", "--server", server, "--ca", f.ca.CertFile, "--cert", other.CertFile, "--key", other.KeyFile)
		if code != exitAion || !strings.Contains(stderr, "refused this client's TLS connection") {
			t.Errorf("nodes with a foreign certificate: exit %d, stderr %q; want %d and the refusal", code, stderr, exitAion)
		}
	})
	t.Run("TLS older than 1.2 is refused", func(t *testing.T) {
		cfg := clientTLS(t, f.ca, f.client)
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		conn, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			conn.Close()
			t.Fatal("a TLS 1.1 handshake with the API succeeded")
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("TLS 1.1 handshake: %v; want a protocol version refusal", err)
		}
	})
}

// waitNode waits for node's registration in etcd.
func waitNode(t *testing.T, cli *clientv3.Client, node string) {
	t.Helper()
	keys := store.Keys{Prefix: store.DefaultPrefix}
	clustertest.WaitFor(t, 30*time.Second, node+" to register", func() bool {
		resp, err := cli.Get(context.Background(), keys.Node(node))
		return err == nil && len(resp.Kvs) == 1
	})
}

// readFires reads the fire records of job.
func readFires(t *testing.T, cli *clientv3.Client, job string) []store.Fire {
	t.Helper()
	keys := store.Keys{Prefix: store.DefaultPrefix}
	resp, err := cli.Get(context.Background(), keys.JobFires(job), clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("read fires: %v", err)
	}
	var fires []store.Fire
	for _, kv := range resp.Kvs {
		var f store.Fire
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			t.Fatalf("decode %s: %v", kv.Key, err)
		}
		fires = append(fires, f)
	}
	return fires
}

// Connections to etcd and NATS without TLS, without the CA, without a
// client certificate or without the right credentials are refused, and
// aion says what to configure.
func TestTLS_EtcdAndNATSRefuseWhatIsNotAllowed(t *testing.T) {
	f := newSecureFiles(t)
	etcdURL, _ := startSecureEtcd(t, f.ca)
	natsURL := startSecureNATS(t, f.ca, natsUserPassword)
	good := map[string]string{
		"--etcd": etcdURL, "--etcd-ca": f.ca.CertFile, "--etcd-cert": f.client.CertFile, "--etcd-key": f.client.KeyFile,
		"--etcd-username": etcdUser,
		"--nats":          natsURL, "--nats-ca": f.ca.CertFile, "--nats-cert": f.client.CertFile, "--nats-key": f.client.KeyFile,
		"--nats-user": natsUser,
	}
	t.Setenv("AION_ETCD_PASSWORD", etcdPassword)
	t.Setenv("AION_NATS_PASSWORD", natsPassword)
	tests := []struct {
		name    string
		change  map[string]string // flags to set ("" drops the flag)
		env     map[string]string
		inError []string
	}{
		{name: "etcd without TLS", change: map[string]string{"--etcd": strings.Replace(etcdURL, "https://", "http://", 1), "--etcd-ca": "", "--etcd-cert": "", "--etcd-key": ""},
			inError: []string{"speaks TLS", "https://", "etcd.tls.ca (--etcd-ca)"}},
		{name: "etcd without its CA", change: map[string]string{"--etcd-ca": ""},
			inError: []string{"not signed by a CA this client trusts", "etcd.tls.ca (--etcd-ca)"}},
		{name: "etcd without a client certificate", change: map[string]string{"--etcd-cert": "", "--etcd-key": ""},
			inError: []string{"refused this client's TLS connection", "etcd.tls.cert (--etcd-cert)"}},
		{name: "etcd without credentials", change: map[string]string{"--etcd-username": ""}, env: map[string]string{"AION_ETCD_PASSWORD": ""},
			inError: []string{"permission denied", "etcd.username"}},
		{name: "etcd with a wrong password", env: map[string]string{"AION_ETCD_PASSWORD": "wrong"},
			inError: []string{"authentication failed", "etcd.password"}},
		{name: "NATS without its CA", change: map[string]string{"--nats-ca": ""},
			inError: []string{"unknown authority", "nats.tls.ca (--nats-ca)"}},
		{name: "NATS without a client certificate", change: map[string]string{"--nats-cert": "", "--nats-key": ""},
			inError: []string{"client certificate", "nats.tls.cert (--nats-cert)"}},
		{name: "NATS without credentials", change: map[string]string{"--nats-user": ""}, env: map[string]string{"AION_NATS_PASSWORD": ""},
			inError: []string{"Authorization Violation", "nats.user"}},
		{name: "NATS with a wrong password", env: map[string]string{"AION_NATS_PASSWORD": "wrong"},
			inError: []string{"Authorization Violation", "nats.password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := []string{"executor", "--node-id", "refused", "--output-dir", t.TempDir()}
			for flag, value := range good {
				if v, ok := tt.change[flag]; ok {
					value = v
				}
				if value != "" {
					args = append(args, flag, value)
				}
			}
			p := startAion(t, "executor", args...)
			code, output, ok := p.exited(30 * time.Second)
			if !ok {
				t.Fatalf("the executor still runs after 30s; want it refused\noutput: %s", output)
			}
			if code != exitFailure {
				t.Errorf("exit %d; want %d", code, exitFailure)
			}
			for _, s := range tt.inError {
				if !strings.Contains(output, s) {
					t.Errorf("output %q; want it to contain %q", output, s)
				}
			}
		})
	}
}

// An executor logs in to NATS with a token, an nkey seed file or a
// credentials file (operator mode), and registers; a wrong one is refused.
func TestTLS_NATSLogsInWithTokenNKeyOrCreds(t *testing.T) {
	clustertest.SkipShort(t, "end-to-end, executors logging in to NATS")
	f := newSecureFiles(t)
	etcdURL, admin := startSecureEtcd(t, f.ca)
	t.Setenv("AION_ETCD_PASSWORD", etcdPassword)
	nkeyAuth, seedFile := natsNKeyAuth(t)
	_, otherSeed := natsNKeyAuth(t) // a user the server does not know
	operatorAuth, credsFile := natsOperatorAuth(t)
	_, otherCreds := natsOperatorAuth(t) // a user of another operator
	tests := []struct {
		name    string
		auth    func(*natsserver.Options)
		env     map[string]string // the login that works
		flags   []string
		wrong   map[string]string // a login that does not
		wrongFl []string
	}{
		{name: "token", auth: natsTokenAuth,
			env: map[string]string{"AION_NATS_TOKEN": natsToken}, wrong: map[string]string{"AION_NATS_TOKEN": "wrong"}},
		{name: "nkey", auth: nkeyAuth, flags: []string{"--nats-nkey", seedFile}, wrongFl: []string{"--nats-nkey", otherSeed}},
		{name: "creds", auth: operatorAuth, flags: []string{"--nats-creds", credsFile}, wrongFl: []string{"--nats-creds", otherCreds}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			natsURL := startSecureNATS(t, f.ca, tt.auth)
			base := []string{"executor", "--output-dir", t.TempDir(),
				"--etcd", etcdURL, "--etcd-ca", f.ca.CertFile, "--etcd-cert", f.client.CertFile, "--etcd-key", f.client.KeyFile, "--etcd-username", etcdUser,
				"--nats", natsURL, "--nats-ca", f.ca.CertFile, "--nats-cert", f.client.CertFile, "--nats-key", f.client.KeyFile}

			for k, v := range tt.wrong {
				t.Setenv(k, v)
			}
			refused := startAion(t, "refused executor", append(slices.Concat(base, tt.wrongFl), "--node-id", "refused-"+tt.name)...)
			code, output, ok := refused.exited(30 * time.Second)
			if !ok || code != exitFailure || !strings.Contains(output, "Authorization Violation") || !strings.Contains(output, "nats."+tt.name) {
				t.Errorf("with a wrong %s: ended %v, exit %d, output %q; want exit %d, an authorization violation and nats.%s named", tt.name, ok, code, output, exitFailure, tt.name)
			}

			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			node := "x-" + tt.name
			startAion(t, "executor", append(slices.Concat(base, tt.flags), "--node-id", node)...)
			waitNode(t, admin, node)
		})
	}
}

// A TLS or credentials setting that cannot work is a usage error at start,
// naming the key and the file, before anything connects or listens.
func TestTLS_BadFilesAreUsageErrorsNamingKeyAndFile(t *testing.T) {
	f := newSecureFiles(t)
	dir := t.TempDir()
	missing := dir + "/missing.pem"
	notPEM := writeFile(t, dir, "not.pem", "this is not PEM\n")
	badSeed := writeFile(t, dir, "bad.nk", "SUNOTASEED\n")
	badCreds := writeFile(t, dir, "bad.creds", "no JWT here\n")
	_, seed := natsNKeyAuth(t)
	// No server runs at these addresses: a usage error comes first.
	executor := []string{"executor", "--output-dir", dir, "--etcd", "https://127.0.0.1:1", "--nats", "tls://127.0.0.1:1"}
	scheduler := []string{"scheduler", "--etcd", "https://127.0.0.1:1", "--nats", "tls://127.0.0.1:1", "--listen", "127.0.0.1:0"}
	tests := []struct {
		name    string
		args    []string
		inError []string
	}{
		{"missing etcd CA", append(slices.Clone(executor), "--etcd-ca", missing), []string{"etcd.tls.ca (--etcd-ca)", missing, "no such file"}},
		{"etcd CA not PEM", append(slices.Clone(executor), "--etcd-ca", notPEM), []string{"etcd.tls.ca (--etcd-ca)", notPEM, "no valid PEM"}},
		{"etcd key without certificate", append(slices.Clone(executor), "--etcd-key", f.client.KeyFile), []string{"etcd.tls.key (--etcd-key)", "etcd.tls.cert (--etcd-cert)"}},
		{"etcd certificate is not PEM", append(slices.Clone(executor), "--etcd-cert", notPEM, "--etcd-key", f.client.KeyFile), []string{"etcd.tls.cert (--etcd-cert)", notPEM, f.client.KeyFile}},
		{"etcd certificate and a key of another", append(slices.Clone(executor), "--etcd-cert", f.client.CertFile, "--etcd-key", f.api.KeyFile), []string{"etcd.tls.cert (--etcd-cert)", f.client.CertFile, f.api.KeyFile, "private key does not match"}},
		{"etcd TLS with a plain endpoint", append(slices.Clone(executor), "--etcd", "http://127.0.0.1:1", "--etcd-ca", f.ca.CertFile), []string{"etcd.endpoints", "http://127.0.0.1:1", "https://"}},
		{"etcd user without password", append(slices.Clone(executor), "--etcd-username", "aion"), []string{"etcd.username", "etcd.password"}},
		{"missing NATS CA", append(slices.Clone(executor), "--nats-ca", missing), []string{"nats.tls.ca (--nats-ca)", missing}},
		{"NATS user without password", append(slices.Clone(executor), "--nats-user", "aion"), []string{"nats.user", "nats.password"}},
		{"bad nkey seed", append(slices.Clone(executor), "--nats-nkey", badSeed), []string{"nats.nkey (--nats-nkey)", badSeed}},
		{"missing creds", append(slices.Clone(executor), "--nats-creds", missing), []string{"nats.creds (--nats-creds)", missing}},
		{"bad creds", append(slices.Clone(executor), "--nats-creds", badCreds), []string{"nats.creds (--nats-creds)", badCreds, "JWT"}},
		{"two NATS logins", append(slices.Clone(executor), "--nats-token", "x", "--nats-nkey", seed), []string{"nats.token and nats.nkey", "one way"}},
		{"API key without certificate", append(slices.Clone(scheduler), "--tls-key", f.api.KeyFile), []string{"scheduler.tls.cert (--tls-cert)", "scheduler.tls.key (--tls-key)"}},
		{"API client CA alone", append(slices.Clone(scheduler), "--tls-client-ca", f.ca.CertFile), []string{"scheduler.tls.cert (--tls-cert)"}},
		{"API client CA not PEM", append(slices.Clone(scheduler), "--tls-cert", f.api.CertFile, "--tls-key", f.api.KeyFile, "--tls-client-ca", notPEM), []string{"scheduler.tls.client_ca (--tls-client-ca)", notPEM}},
		{"missing API certificate", append(slices.Clone(scheduler), "--tls-cert", missing, "--tls-key", f.api.KeyFile), []string{"scheduler.tls.cert (--tls-cert)", missing}},
		{"client CA not PEM", []string{"jobs", "--server", "https://127.0.0.1:1", "--ca", notPEM}, []string{"client.tls.ca (--ca)", notPEM}},
		{"client certificate without key", []string{"jobs", "--server", "https://127.0.0.1:1", "--cert", f.client.CertFile}, []string{"client.tls.cert (--cert)", "client.tls.key (--key)"}},
		{"client CA for a plain server", []string{"jobs", "--server", "http://127.0.0.1:1", "--ca", f.ca.CertFile}, []string{"--server http://127.0.0.1:1", "https://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runAion(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\nstderr: %s", code, exitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			for _, s := range tt.inError {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q; want it to contain %q", stderr, s)
				}
			}
		})
	}
}

// aion token create --etcd reaches a TLS etcd with authentication on as a
// scheduler does, with the same flags (or AION_* variables), and the token
// it prints is the one etcd now holds; without the CA it is refused, with
// the hint.
func TestTLS_TokenCreateWritesToASecureEtcd(t *testing.T) {
	f := newSecureFiles(t)
	etcdURL, admin := startSecureEtcd(t, f.ca)
	t.Setenv("AION_ETCD_PASSWORD", etcdPassword)
	base := []string{"token", "create", "first-admin", "--role", "admin", "--etcd", etcdURL,
		"--etcd-cert", f.client.CertFile, "--etcd-key", f.client.KeyFile, "--etcd-username", etcdUser, "-o", "json"}

	code, stdout, stderr := runAion(t, base...)
	if code == 0 {
		t.Fatalf("without --etcd-ca: exit 0, want a refusal; stdout %s", stdout)
	}
	if !strings.Contains(stderr, "etcd.tls.ca (--etcd-ca)") {
		t.Errorf("without --etcd-ca: %q; want the hint naming etcd.tls.ca (--etcd-ca)", stderr)
	}

	code, stdout, stderr = runAion(t, append(base, "--etcd-ca", f.ca.CertFile)...)
	if code != 0 {
		t.Fatalf("token create --etcd over TLS: exit %d\n%s", code, stderr)
	}
	var res struct{ Name, Role, Secret string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Secret == "" {
		t.Fatalf("output %q: %v; want the token as JSON with its secret", stdout, err)
	}
	tok, found, err := store.LookupToken(t.Context(), admin, store.Keys{Prefix: store.DefaultPrefix}, res.Secret)
	if err != nil || !found || tok.Name != "first-admin" || tok.Role != "admin" || tok.CreatedBy != "etcd" {
		t.Errorf("etcd holds %+v (found %v, %v); want first-admin, admin, created by etcd", tok, found, err)
	}
}
