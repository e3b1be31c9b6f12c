package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/apiserver"
	"github.com/aionsched/aion/scheduler/store"
)

// TestClient_RunWaitSaysTheServerStopped follows a long run with
// `aion run --wait` and stops the API server under it: the client says
// that the server stopped answering and how the run was last seen, not
// that it cannot reach the API.
func TestClient_RunWaitSaysTheServerStopped(t *testing.T) {
	requireClientCommands(t)
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	c.StartExecutor(t, "x1", 1, nil)
	srv := apiserver.New(c.Etcd, c.NATS, c.Keys, "aion.", c.Log, time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c.Apply(t, "name: long\nschedule: manual\ncommand: echo started; sleep 60\n")

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		code := run(t.Context(), []string{"run", "long", "--wait", "--server", hs.URL}, &out, &errOut)
		done <- result{code, out.String(), errOut.String()}
	}()
	clustertest.WaitFor(t, 15*time.Second, "the run to start", func() bool {
		fires := c.Fires(t, "long")
		return len(fires) == 1 && fires[0].State == store.FireRunning
	})
	time.Sleep(time.Second) // the client has seen it running
	hs.CloseClientConnections()
	hs.Close()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("aion run --wait did not end after the server stopped")
	}
	if r.code == 0 || strings.Contains(r.stderr, "cannot reach the Aion API") ||
		!strings.Contains(r.stderr, "stopped answering while following long@") ||
		!strings.Contains(r.stderr, "last seen running on x1 (attempt 1); once the API is back, aion logs -f long@") {
		t.Errorf("exit %d, stderr:\n%s\nwant a non-zero exit saying the server stopped and the run was last seen running on x1", r.code, r.stderr)
	}
	if r.stdout != "started\n" {
		t.Errorf("stdout %q, want the output streamed before the server stopped", r.stdout)
	}
}
