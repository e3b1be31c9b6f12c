package scheduler

import (
	"strings"
	"testing"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// The leader places container jobs only on nodes with the label executors
// set when they find a Docker engine (store.DockerLabel, defined once).
func TestPlacement_ContainerJobsNeedTheDockerLabel(t *testing.T) {
	p := newPlacement()
	p.register(store.Node{ID: "a", Slots: 8})
	p.register(store.Node{ID: "b", Slots: 1, Labels: map[string]string{store.DockerLabel: "true"}})
	for range 3 {
		if got, why := p.choose(&jobEntry{policy: &jobPolicy{Container: true}}); got != "b" {
			t.Fatalf("container job placed on %q (%s), want b, the only node labelled %s=true", got, why, store.DockerLabel)
		}
	}
	p.unregister("b")
	if got, why := p.choose(&jobEntry{policy: &jobPolicy{Container: true}}); got != "" || !strings.Contains(why, store.DockerLabel+"=true") {
		t.Errorf("without a Docker node: got %q (%q), want none and a reason naming %s=true", got, why, store.DockerLabel)
	}
}

func TestPlacement_ChoosesLeastLoadedEligibleNode(t *testing.T) {
	p := newPlacement()
	p.register(store.Node{ID: "a", Slots: 4, Labels: map[string]string{"zone": "eu"}})
	p.register(store.Node{ID: "b", Slots: 2, Labels: map[string]string{"zone": "eu", "gpu": "true"}})
	p.register(store.Node{ID: "c", Slots: 8, Labels: map[string]string{"zone": "us"}})
	p.report(store.LoadReport{Node: "a", Load1: 3})
	p.report(store.LoadReport{Node: "b", Load1: 0.5})
	job := &jobPolicy{}
	eu, _ := jobspec.ParseSelectors([]string{"zone=eu"})

	// Equal share (0): the lower load average wins.
	if got, _ := p.choose(&jobEntry{policy: job, sels: eu}); got != "b" {
		t.Errorf("first pick = %s, want b (same share, lower load)", got)
	}
	// b at 1/2 vs a at 0/4: a has the lower share.
	p.assigned["b"] = 1
	if got, _ := p.choose(&jobEntry{policy: job, sels: eu}); got != "a" {
		t.Errorf("pick = %s, want a (0/4 < 1/2)", got)
	}
	// Full nodes are never chosen; the reason says so.
	p.assigned["a"], p.assigned["b"] = 4, 2
	got, reason := p.choose(&jobEntry{policy: job, sels: eu})
	if got != "" || !strings.Contains(reason, "full") {
		t.Errorf("pick = %q (%s), want none: all full", got, reason)
	}
	// A container job needs a node advertising Docker.
	ct := &jobPolicy{Container: true}
	got, reason = p.choose(&jobEntry{policy: ct})
	if got != "" || !strings.Contains(reason, "aion.docker=true") {
		t.Errorf("container pick = %q (%s), want none with the docker label named", got, reason)
	}
	p.register(store.Node{ID: "d", Slots: 1, Labels: map[string]string{store.DockerLabel: "true"}})
	if got, _ := p.choose(&jobEntry{policy: ct}); got != "d" {
		t.Errorf("container pick = %q, want d", got)
	}
}

func TestPlacement_RoundRobinAmongEquals(t *testing.T) {
	p := newPlacement()
	for _, id := range []string{"a", "b", "c"} {
		p.register(store.Node{ID: id, Slots: 10})
	}
	seen := map[string]int{}
	for range 30 {
		id, _ := p.choose(&jobEntry{policy: &jobPolicy{}})
		seen[id]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if seen[id] != 10 {
			t.Errorf("node %s chosen %d times of 30, want 10 (round-robin among equals): %v", id, seen[id], seen)
		}
	}
}

func TestPlacement_NoNodes(t *testing.T) {
	got, reason := newPlacement().choose(&jobEntry{policy: &jobPolicy{}})
	if got != "" || !strings.Contains(reason, "none is registered") {
		t.Errorf("pick = %q (%s)", got, reason)
	}
}

// A node's policy decides too: a job goes only where its user (or its
// container's settings) is allowed, and otherwise waits saying which node
// allows what. A registration without a policy has the default one.
func TestPlacement_NodePolicies(t *testing.T) {
	p := newPlacement()
	p.register(store.Node{ID: "web1", Slots: 4, Policy: &jobspec.NodePolicy{User: "aion", UID: "1000"}})
	p.register(store.Node{ID: "old", Slots: 4}) // registered before policies
	postgres := &jobEntry{policy: &jobPolicy{}, needs: &jobspec.Job{Name: "j", User: "postgres"}}
	got, reason := p.choose(postgres)
	want := `waiting for an executor whose policy allows the job: node old: user "postgres" is not allowed (allows: no user`
	if got != "" || !strings.HasPrefix(reason, want) || !strings.Contains(reason, `node web1: user "postgres" is not allowed (allows: aion)`) {
		t.Errorf("postgres job: got %q (%s), want none, with %q and web1's users", got, reason, want)
	}
	p.register(store.Node{ID: "db1", Slots: 1, Policy: &jobspec.NodePolicy{User: "aion", RunAs: []string{"postgres"}}})
	for range 3 {
		if got, reason := p.choose(postgres); got != "db1" {
			t.Fatalf("postgres job: got %q (%s), want db1, the node that allows postgres", got, reason)
		}
	}
	p.assigned["db1"] = 1
	if got, reason := p.choose(postgres); got != "" || !strings.HasPrefix(reason, "waiting for a free slot: all 1 eligible executors are full; the others' policies forbid the job: node old:") {
		t.Errorf("db1 full: got %q (%s), want none, waiting for a slot", got, reason)
	}
	// A job without a user runs as each executor's own user: anywhere.
	if got, reason := p.choose(&jobEntry{policy: &jobPolicy{}}); got == "" {
		t.Errorf("job without a user: none chosen (%s)", reason)
	}
	// Container settings are the node's policy too.
	p.register(store.Node{ID: "docker1", Slots: 4, Labels: map[string]string{store.DockerLabel: "true"}})
	hostNet := &jobEntry{policy: &jobPolicy{Container: true}, needs: &jobspec.Job{Name: "j", Container: &jobspec.Container{Image: "x", Network: "host"}}}
	if got, reason := p.choose(hostNet); got != "" || !strings.Contains(reason, `node docker1: network "host" is not allowed (allows: bridge, none)`) ||
		!strings.Contains(reason, "3 not matching") {
		t.Errorf("host network job: got %q (%s), want none, saying docker1 forbids the host network", got, reason)
	}
}
