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

// TestApply_JobsStoredBeforeApplySetsAreNeverPrunedImplicitly: a job
// stored without an apply set record (as every job was before apply sets)
// is kept by the prune of any set, joins the set that applies it, and only
// then can that set's prune delete it.
func TestApply_JobsStoredBeforeApplySetsAreNeverPrunedImplicitly(t *testing.T) {
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
	t.Cleanup(func() { _ = cli.Close() })
	keys := store.Keys{Prefix: store.DefaultPrefix}
	parse := func(yaml string) []*jobspec.Job {
		t.Helper()
		jobs, errs := jobspec.Parse("jobs.yaml", []byte(yaml))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return jobs
	}
	old, other := parse("name: old\nschedule: manual\ncommand: echo old\n"), parse("name: other\nschedule: manual\ncommand: echo other\n")
	// Stored as before apply sets: definition and state, no set record.
	if _, err := store.Apply(ctx, cli, keys, old, store.ApplyOptions{Set: "x"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(ctx, keys.ApplySet("old")); err != nil {
		t.Fatal(err)
	}

	res, err := store.Apply(ctx, cli, keys, other, store.ApplyOptions{Set: "dir", Prune: true}, time.Now())
	if err != nil || len(res.Deleted) != 0 || len(res.Kept) != 1 || res.Owners["old"] != "" {
		t.Fatalf("prune of set dir: %+v, %v; want old kept, of no set", res, err)
	}
	res, err = store.Apply(ctx, cli, keys, append(other, old...), store.ApplyOptions{Set: "dir", Prune: true}, time.Now())
	if err != nil || len(res.Updated) != 1 || res.Updated[0] != "old" {
		t.Fatalf("apply old in set dir: %+v, %v; want old updated (into the set)", res, err)
	}
	got, err := cli.Get(ctx, keys.ApplySet("old"))
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "dir" {
		t.Fatalf("set record of old: %v, %v; want dir", got.Kvs, err)
	}
	res, err = store.Apply(ctx, cli, keys, other, store.ApplyOptions{Set: "dir", Prune: true}, time.Now())
	if err != nil || len(res.Deleted) != 1 || res.Deleted[0] != "old" {
		t.Fatalf("prune of set dir without old: %+v, %v; want old deleted", res, err)
	}
	for _, key := range []string{keys.Job("old"), keys.State("old"), keys.ApplySet("old")} {
		if resp, err := cli.Get(ctx, key, clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
			t.Errorf("%s still stored after prune (%v)", key, err)
		}
	}
}
