package executor_test

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/store"
)

// TestExecutor_DefaultLabelsPlaceConstrainedJobs starts an executor with
// no labels configured: it advertises os, arch and hostname, so a job
// constrained to this machine's os and arch runs on it.
func TestExecutor_DefaultLabelsPlaceConstrainedJobs(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	startExecutor(t, c, "plain")
	c.Apply(t, `
name: native
schedule: manual
command: "true"
constraints: ["os=`+runtime.GOOS+`", "arch=`+runtime.GOARCH+`", "hostname"]
`)
	id := c.RequestRun(t, "native", store.Request{By: "test"})
	if f := c.WaitFinal(t, id, 15*time.Second); f.State != store.FireSucceeded || f.Node != "plain" {
		t.Errorf("fire %s on %q (%s), want succeeded on the default-labelled node", f.State, f.Node, f.Reason)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	n := c.WaitRegistered(t, "plain")
	if n.Labels["os"] != runtime.GOOS || n.Labels["arch"] != runtime.GOARCH || n.Labels["hostname"] != host {
		t.Errorf("registered labels %v, want os=%s arch=%s hostname=%s", n.Labels, runtime.GOOS, runtime.GOARCH, host)
	}
}

// TestExecutor_ConfiguredLabelsOverrideTheDefaults sets os itself: its
// value wins, and the other default labels stay.
func TestExecutor_ConfiguredLabelsOverrideTheDefaults(t *testing.T) {
	t.Parallel()
	c := clustertest.Start(t)
	c.StartExecutor(t, "custom", 1, map[string]string{"os": "plan9", "zone": "eu"})
	n := c.WaitRegistered(t, "custom")
	if n.Labels["os"] != "plan9" || n.Labels["zone"] != "eu" || n.Labels["arch"] != runtime.GOARCH {
		t.Errorf("registered labels %v, want os=plan9 zone=eu and the default arch=%s", n.Labels, runtime.GOARCH)
	}
}
