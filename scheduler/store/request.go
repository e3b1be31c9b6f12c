package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RequestRun records a request for a manual run of job at req.At and
// returns the ID the fire will have. The job must exist; the leader plans
// the fire (fenced) and deletes the request in one transaction.
func RequestRun(ctx context.Context, cli *clientv3.Client, keys Keys, job string, req Request) (FireID, error) {
	req.At = req.At.UTC()
	req.Kill = ""
	return putRequest(ctx, cli, keys, "run", ManualFireID(job, req.At), req)
}

// RequestKill asks the leader to stop the open fire target: a planned fire
// is cancelled, a running one is killed by its executor (SIGTERM, then
// SIGKILL after the grace period) and recorded as cancelled.
func RequestKill(ctx context.Context, cli *clientv3.Client, keys Keys, target FireID, by string, now time.Time) error {
	id := FireID{Job: target.Job, Suffix: "kill-" + now.UTC().Format(time.RFC3339Nano)}
	_, err := putRequest(ctx, cli, keys, "kill", id, Request{By: by, At: now.UTC(), Kill: target.String()})
	return err
}

// RequestPause asks the leader to pause or resume job.
func RequestPause(ctx context.Context, cli *clientv3.Client, keys Keys, job string, change PauseChange, by string, now time.Time) error {
	id := FireID{Job: job, Suffix: "pause-" + now.UTC().Format(time.RFC3339Nano)}
	what := "resume"
	if change.Pause {
		what = "pause"
	}
	_, err := putRequest(ctx, cli, keys, what, id, Request{By: by, At: now.UTC(), Pause: &change})
	return err
}

// RequestBackfill asks the leader to plan every nominal time of job in the
// range; it returns the ID naming the backfill.
func RequestBackfill(ctx context.Context, cli *clientv3.Client, keys Keys, job string, b Backfill, by string, now time.Time) (FireID, error) {
	id := FireID{Job: job, Suffix: "backfill-" + now.UTC().Format(time.RFC3339Nano)}
	return putRequest(ctx, cli, keys, "backfill", id, Request{By: by, At: now.UTC(), Backfill: &b})
}

// putRequest writes req under id if the job exists and no request or fire
// has that ID yet; what names the request in errors ("run", "kill", ...).
func putRequest(ctx context.Context, cli *clientv3.Client, keys Keys, what string, id FireID, req Request) (FireID, error) {
	job := id.Job
	data, err := json.Marshal(req)
	if err != nil {
		return FireID{}, fmt.Errorf("%s request for %s: encode: %w", what, job, err)
	}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(keys.Job(job)), ">", 0),
			clientv3.Compare(clientv3.CreateRevision(keys.Request(id)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(keys.Fire(id)), "=", 0)).
		Then(clientv3.OpPut(keys.Request(id), string(data))).
		Else(clientv3.OpGet(keys.Job(job), clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return FireID{}, fmt.Errorf("%s request for %s: %w", what, job, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return FireID{}, fmt.Errorf("%s request for %s: %w", what, job, ErrNoSuchJob)
		}
		return FireID{}, fmt.Errorf("%s request for %s: %w", what, job, ErrDuplicateRequest)
	}
	return id, nil
}

// Errors of RequestRun, RequestKill, RequestPause and RequestBackfill.
var (
	ErrNoSuchJob        = errors.New("store: no such job")
	ErrDuplicateRequest = errors.New("store: an identical request is pending")
)
