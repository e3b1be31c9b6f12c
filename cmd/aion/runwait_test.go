package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/apiserver"
	"github.com/aionsched/aion/scheduler/store"
)

// TestClient_RunWaitSaysTheServerStopped follows a long run with
// `aion run --wait` and stops the API server under it: the client says
// that the server stopped answering and how the run was last seen, not
// that it cannot reach the API.
func TestClient_RunWaitSaysTheServerStopped(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev or waits for a server to go")
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
	token := c.Token(t, "runner", "operator")
	c.Apply(t, "name: long\nschedule: manual\ncommand: echo started; sleep 60\n")

	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		code := run(t.Context(), []string{"run", "long", "--wait", "--server", hs.URL, "--token", token}, &out, &errOut)
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

// TestDev_CtrlCLetsRunWaitSeeHowItsRunEnded stops `aion dev` (its context
// ends, as on Ctrl-C) while `aion run --wait` follows a run: the run gets
// SIGTERM at once, and the API answers until its end is recorded, so the
// client exits with the run's exit code and says how it ended.
func TestDev_CtrlCLetsRunWaitSeeHowItsRunEnded(t *testing.T) {
	clustertest.SkipShort(t, "starts aion dev or waits for a server to go")
	requireClientCommands(t)
	jobs := t.TempDir()
	writeJobs(t, jobs, map[string]string{"long.yaml": "name: long\nschedule: manual\ncommand: echo started; sleep 60\n"})
	addr := clustertest.FreeAddr(t)
	devCtx, ctrlC := context.WithCancel(t.Context())
	defer ctrlC()
	devDone := make(chan int, 1)
	data := t.TempDir()
	go func() {
		var out, errOut bytes.Buffer
		devDone <- run(devCtx, []string{"dev", "--data-dir", data, "--jobs", jobs, "--listen", addr,
			"--grace", "30s", "--docker", "off"}, &out, &errOut)
	}()
	health, err := api.NewClient("http://"+addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	clustertest.WaitFor(t, 30*time.Second, "aion dev's API", func() bool { return health.Health(t.Context()) == nil })
	cl := devClient(t, addr, data)

	done := make(chan [2]string, 1)
	codes := make(chan int, 1)
	go func() {
		var out, errOut bytes.Buffer
		codes <- run(t.Context(), []string{"run", "long", "--wait", "--server", "http://" + addr, "--token-file", filepath.Join(data, "token")}, &out, &errOut)
		done <- [2]string{out.String(), errOut.String()}
	}()
	clustertest.WaitFor(t, 15*time.Second, "the run to start", func() bool {
		fires, err := cl.Fires(t.Context(), "long", 1)
		return err == nil && len(fires.Fires) == 1 && fires.Fires[0].State == api.FireRunning
	})
	time.Sleep(time.Second) // the client follows it
	ctrlC()
	var code int
	var out [2]string
	select {
	case code = <-codes:
		out = <-done
	case <-time.After(30 * time.Second): // below the 30 s grace and the 60 s sleep
		t.Fatal("aion run --wait did not end after aion dev stopped")
	}
	if code != 128+15 || !strings.Contains(out[1], "killed: the executor stopped (SIGTERM)") || strings.Contains(out[1], "stopped answering") {
		t.Errorf("run --wait: exit %d, stderr:\n%s\nwant exit 143 (SIGTERM) and the reason", code, out[1])
	}
	if dc := <-devDone; dc != 0 {
		t.Errorf("aion dev exited %d", dc)
	}
}
