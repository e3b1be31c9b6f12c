package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/api"
)

// TestAPI_ApplyOfManyJobsLogsCountsNotEveryName applies 500 jobs and
// checks the log line of the apply: it counts them and names a few, not
// all (50,000 jobs made one line of 50,000 names).
func TestAPI_ApplyOfManyJobsLogsCountsNotEveryName(t *testing.T) {
	c := clustertest.Start(t)
	core, logs := observer.New(zap.InfoLevel)
	srv := New(c.Etcd, c.NATS, c.Keys, "aion.", zap.New(core), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	tok := c.AdminToken(t)

	var b strings.Builder
	b.WriteString("jobs:\n")
	const n = 500
	for i := range n {
		fmt.Fprintf(&b, "  - name: job-%03d\n    schedule: manual\n    command: \"true\"\n", i)
	}
	res := callJSON[api.ApplyResponse](t, tok, "POST", hs.URL+"/v1/apply", files("jobs.yaml", b.String()), http.StatusOK)
	if len(res.Created) != n {
		t.Fatalf("created %d jobs, want %d", len(res.Created), n)
	}
	entries := logs.FilterMessage("jobs applied").All()
	if len(entries) != 1 {
		t.Fatalf("%d \"jobs applied\" log lines, want 1", len(entries))
	}
	fields := entries[0].ContextMap()
	if got := fields["created"]; got != int64(n) {
		t.Errorf("created: got %v (%T), want the count %d", got, got, n)
	}
	if line := fmt.Sprint(fields); strings.Count(line, "job-") > maxLoggedNames {
		t.Errorf("the log line names %d jobs, want at most %d: %s", strings.Count(line, "job-"), maxLoggedNames, line)
	}
}
