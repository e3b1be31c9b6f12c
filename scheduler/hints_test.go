package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

// TestHints_ForgedKillIsIgnoredRecordedKillWorks: a kill published
// straight on NATS, as any peer on the bus could, stops nothing (the run
// succeeds); a kill asked through the leader (what aion kill and the API
// write) stops the run with the reason the leader recorded.
func TestHints_ForgedKillIsIgnoredRecordedKillWorks(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
jobs:
  - name: short
    schedule: manual
    command: sleep 2
  - name: long
    schedule: manual
    command: sleep 60
`)
	id := c.RequestRun(t, "short", store.Request{})
	f := c.WaitFire(t, id, 10*time.Second, "running", func(f store.Fire) bool { return f.State == store.FireRunning })
	for i := 0; i < 10; i++ { // over a second of forged kills while it runs
		c.SendKillHint(t, f.Node, id, f.Attempt)
		time.Sleep(100 * time.Millisecond)
	}
	if f := c.WaitFire(t, id, 10*time.Second, "final and processed", processed); f.State != store.FireSucceeded || f.Kill != nil {
		t.Errorf("run sent forged kills: %s (%s), kill %+v; want succeeded, no kill recorded", f.State, f.Reason, f.Kill)
	}

	id = c.RequestRun(t, "long", store.Request{})
	c.WaitFire(t, id, 10*time.Second, "running", func(f store.Fire) bool { return f.State == store.FireRunning })
	if err := store.RequestKill(context.Background(), c.Etcd, c.Keys, id, "tester", time.Now()); err != nil {
		t.Fatal(err)
	}
	f = c.WaitFire(t, id, 10*time.Second, "final and processed", processed)
	if f.State != store.FireCancelled || !strings.HasPrefix(f.Reason, "killed by tester") {
		t.Errorf("killed run: %s (%s); want cancelled, killed by tester", f.State, f.Reason)
	}
	if f.Kill == nil || f.Kill.Attempt != 1 || f.Kill.Reason != "killed by tester" {
		t.Errorf("killed run's record: kill %+v; want the kill of attempt 1 by tester kept", f.Kill)
	}
}

// TestHints_LostKillHintIsSentAgain records a kill in a running fire's
// record without sending the hint, as when the hint is lost: reconcile
// hints again, and the executor kills the run with the recorded reason.
func TestHints_LostKillHintIsSentAgain(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
name: long
schedule: manual
command: sleep 60
`)
	id := c.RequestRun(t, "long", store.Request{})
	c.WaitFire(t, id, 10*time.Second, "running", func(f store.Fire) bool { return f.State == store.FireRunning })
	c.RecordKill(t, id, "killed by the lost-hint test")
	f := c.WaitFire(t, id, 10*time.Second, "final and processed", processed)
	if f.State != store.FireCancelled || !strings.HasPrefix(f.Reason, "killed by the lost-hint test") {
		t.Errorf("run whose kill hint was lost: %s (%s); want cancelled with the recorded reason", f.State, f.Reason)
	}
}

// TestHints_LogRequestsMustBeSigned: an executor answers a log request
// only when it is signed with the log signing key from etcd and not
// expired; unsigned, forged, tampered and expired ones get an error and
// no output.
func TestHints_LogRequestsMustBeSigned(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 4, nil)
	c.Apply(t, `
name: talk
schedule: manual
command: echo private output
`)
	id := c.RequestRun(t, "talk", store.Request{})
	f := c.WaitFire(t, id, 10*time.Second, "final and processed", processed)
	if f.State != store.FireSucceeded {
		t.Fatalf("run: %s (%s), want succeeded", f.State, f.Reason)
	}
	if chunk := c.AskLog(t, f.Node, store.LogRequest{Fire: id, Attempt: 1}); string(chunk.Data) != "private output\n" || chunk.Error != "" {
		t.Fatalf("signed request: %q (error %q), want the output", chunk.Data, chunk.Error)
	}

	key, err := store.LogSigningKey(context.Background(), c.Etcd, c.Keys)
	if err != nil {
		t.Fatal(err)
	}
	forgedKey := []byte(strings.Repeat("k", 32))
	expired := store.LogRequest{Fire: id, Attempt: 1}
	expired.Sign(key, time.Now().Add(-time.Second))
	forged := store.LogRequest{Fire: id, Attempt: 1}
	forged.Sign(forgedKey, time.Now().Add(store.LogRequestTTL))
	tampered := store.LogRequest{Fire: id, Attempt: 1, Offset: 8}
	tampered.Sign(key, time.Now().Add(store.LogRequestTTL))
	tampered.Offset = 0
	farAhead := store.LogRequest{Fire: id, Attempt: 1}
	farAhead.Sign(key, time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name, wantErr string
		req           store.LogRequest
	}{
		{"unsigned", "unsigned log request refused", store.LogRequest{Fire: id, Attempt: 1, Expires: time.Now().Add(time.Second)}},
		{"signed with another key", "badly signed", forged},
		{"changed after signing", "badly signed", tampered},
		{"expired", "expired log request refused", expired},
		{"expiring an hour ahead", "expires more than", farAhead},
	} {
		chunk := c.SendLogRequest(t, f.Node, tc.req)
		if len(chunk.Data) != 0 || !strings.Contains(chunk.Error, tc.wantErr) {
			t.Errorf("%s request: answered %q (error %q), want no output and an error with %q", tc.name, chunk.Data, chunk.Error, tc.wantErr)
		}
	}
}
