package store

import (
	"context"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/jobspec"
)

// The guard of an apply fails if a stored parent of an applied job was
// deleted after the jobs were read, which the compare on the jobs prefix
// alone cannot see (a deleted key has no revision); and it holds when
// nothing changed.
func TestGraphGuard_SeesAStoredParentDeleted(t *testing.T) {
	ctx := context.Background()
	srv, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: t.TempDir(), Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.Close(); err != nil {
			t.Error(err)
		}
	})
	keys := Keys{Prefix: DefaultPrefix}
	for _, name := range []string{"parent", "other"} {
		if _, err := cli.Put(ctx, keys.Job(name), `{"name":"`+name+`"}`); err != nil {
			t.Fatal(err)
		}
	}
	stored, rev, err := readStoredJobs(ctx, cli, keys)
	if err != nil {
		t.Fatal(err)
	}
	child := []*jobspec.Job{{Name: "child", Parents: []string{"parent"}}}
	guard := graphGuard(keys, stored, child, rev)
	if ok, err := commitChanges(ctx, cli, []change{guard}); err != nil || !ok {
		t.Fatalf("guard with nothing changed: ok %v, %v; want it to hold", ok, err)
	}
	if _, err := cli.Delete(ctx, keys.Job("parent")); err != nil {
		t.Fatal(err)
	}
	if ok, err := commitChanges(ctx, cli, []change{guard}); err != nil || ok {
		t.Errorf("guard after the parent was deleted: ok %v, %v; want it to fail", ok, err)
	}
}
