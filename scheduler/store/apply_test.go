package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// TestApply_SetTooLargeForOneTransactionIsWrittenInParts applies 500 new
// jobs to an etcd with its shipped limit of 128 operations per
// transaction: the single transaction is refused, the set is written in
// parts, and every job and its state are stored. Applying again changes
// nothing.
func TestApply_SetTooLargeForOneTransactionIsWrittenInParts(t *testing.T) {
	ctx := context.Background()
	srv, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: t.TempDir(), Log: zap.NewNop()}) // default --max-txn-ops
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	var yaml strings.Builder
	yaml.WriteString("jobs:\n")
	for i := range 500 {
		fmt.Fprintf(&yaml, "  - name: j%03d\n    schedule: \"@hourly\"\n    command: echo %d\n", i, i)
	}
	jobs, errs := jobspec.Parse("many.yaml", []byte(yaml.String()))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	keys := store.Keys{Prefix: store.DefaultPrefix}
	res, err := store.Apply(ctx, cli, keys, jobs, store.ApplyOptions{Set: "many", Prune: true}, time.Now())
	if err != nil {
		t.Fatalf("apply 500 jobs: %v", err)
	}
	if len(res.Created) != 500 {
		t.Errorf("created %d, want 500", len(res.Created))
	}
	for _, prefix := range []string{keys.Jobs(), keys.States()} {
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != 500 {
			t.Errorf("%d keys under %s, want 500", resp.Count, prefix)
		}
	}
	res, err = store.Apply(ctx, cli, keys, jobs, store.ApplyOptions{Set: "many", Prune: true}, time.Now())
	if err != nil || len(res.Unchanged) != 500 || len(res.Created)+len(res.Updated)+len(res.Deleted) != 0 {
		t.Errorf("second apply: %+v, %v; want 500 unchanged", len(res.Unchanged), err)
	}
	// Pruning all but one deletes 499 jobs, again in parts.
	res, err = store.Apply(ctx, cli, keys, jobs[:1], store.ApplyOptions{Set: "many", Prune: true}, time.Now())
	if err != nil || len(res.Deleted) != 499 {
		t.Fatalf("prune: %d deleted, %v; want 499", len(res.Deleted), err)
	}
	resp, err := cli.Get(ctx, keys.Jobs(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 1 {
		t.Errorf("%d jobs stored after prune, want 1 (%v)", resp.Count, err)
	}
}
