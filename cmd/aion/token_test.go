package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A token's life through the CLI, as an admin hands one out: created with
// a role (its secret printed once, etcd keeping only its hash), listed
// without secrets, allowed what its role allows and refused the rest with
// the role named, and refused as soon as it is revoked. Runs record the
// token's name as who asked.
func TestToken_CreateUseAndRevokeThroughTheCLI(t *testing.T) {
	c := startCluster(t, true)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": "name: greet\nschedule: manual\ncommand: echo hello\n"})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	secrets := map[string]string{}
	for name, role := range map[string]string{"ci-viewer": "viewer", "ci-operator": "operator"} {
		code, stdout, stderr := c.aion(t, "token", "create", name, "--role", role, "-o", "json")
		var res struct{ Name, Role, Secret string }
		if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Name != name || res.Role != role || !strings.HasPrefix(res.Secret, "aion_") {
			t.Fatalf("token create %s: exit %d, %q\n%s", name, code, stdout, stderr)
		}
		secrets[name] = res.Secret
	}
	as := func(name string, args ...string) (int, string, string) {
		return runAion(t, append(args, "--server", c.url, "--token", secrets[name])...)
	}

	// etcd holds no secret, under any key.
	all, err := c.Etcd.Get(context.Background(), "", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range all.Kvs {
		for name, secret := range secrets {
			if strings.Contains(string(kv.Key), secret) || strings.Contains(string(kv.Value), secret) {
				t.Errorf("etcd key %s holds the secret of %s", kv.Key, name)
			}
		}
	}
	code, stdout, stderr := c.aion(t, "token", "list")
	if code != 0 || !strings.Contains(stdout, "ci-viewer") || !strings.Contains(stdout, "operator") {
		t.Errorf("token list: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for name, secret := range secrets {
		if strings.Contains(stdout, secret) {
			t.Errorf("token list shows the secret of %s", name)
		}
	}

	if code, stdout, stderr := as("ci-viewer", "jobs"); code != 0 || !strings.Contains(stdout, "greet") {
		t.Errorf("viewer: jobs: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := as("ci-viewer", "run", "greet"); code != exitAion || !strings.Contains(stderr, "needs role operator") || !strings.Contains(stderr, "ci-viewer has role viewer") {
		t.Errorf("viewer: run: exit %d, %q; want %d and the role needed", code, stderr, exitAion)
	}
	if code, _, stderr := as("ci-operator", "token", "create", "sneaky", "--role", "admin"); code != exitAion || !strings.Contains(stderr, "needs role admin") {
		t.Errorf("operator: token create: exit %d, %q; want %d and the role needed", code, stderr, exitAion)
	}
	code, stdout, stderr = as("ci-operator", "run", "greet", "--wait")
	if code != 0 {
		t.Fatalf("operator: run --wait: exit %d\n%s\n%s", code, stdout, stderr)
	}
	fires := c.Fires(t, "greet")
	if len(fires) != 1 || fires[0].RequestedBy != "ci-operator" {
		t.Errorf("fires of greet: %+v; want one, requested by ci-operator", fires)
	}

	if code, _, stderr := c.aion(t, "token", "revoke", "ci-viewer"); code != 0 {
		t.Fatalf("token revoke: exit %d: %s", code, stderr)
	}
	if code, _, stderr := as("ci-viewer", "jobs"); code != exitAion || !strings.Contains(stderr, "not valid") {
		t.Errorf("revoked viewer: jobs: exit %d, %q; want %d, the token not valid", code, stderr, exitAion)
	}
	if code, _, stderr := runAion(t, "jobs", "--server", c.url); code != exitAion || !strings.Contains(stderr, "needs a token") {
		t.Errorf("no token: jobs: exit %d, %q; want %d, a token needed", code, stderr, exitAion)
	}
}
