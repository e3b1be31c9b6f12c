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
		if got, why := p.choose(&jobPolicy{Container: true}, nil); got != "b" {
			t.Fatalf("container job placed on %q (%s), want b, the only node labelled %s=true", got, why, store.DockerLabel)
		}
	}
	p.unregister("b")
	if got, why := p.choose(&jobPolicy{Container: true}, nil); got != "" || !strings.Contains(why, store.DockerLabel+"=true") {
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
	if got, _ := p.choose(job, eu); got != "b" {
		t.Errorf("first pick = %s, want b (same share, lower load)", got)
	}
	// b at 1/2 vs a at 0/4: a has the lower share.
	p.assigned["b"] = 1
	if got, _ := p.choose(job, eu); got != "a" {
		t.Errorf("pick = %s, want a (0/4 < 1/2)", got)
	}
	// Full nodes are never chosen; the reason says so.
	p.assigned["a"], p.assigned["b"] = 4, 2
	got, reason := p.choose(job, eu)
	if got != "" || !strings.Contains(reason, "full") {
		t.Errorf("pick = %q (%s), want none: all full", got, reason)
	}
	// A container job needs a node advertising Docker.
	ct := &jobPolicy{Container: true}
	got, reason = p.choose(ct, nil)
	if got != "" || !strings.Contains(reason, "aion.docker=true") {
		t.Errorf("container pick = %q (%s), want none with the docker label named", got, reason)
	}
	p.register(store.Node{ID: "d", Slots: 1, Labels: map[string]string{store.DockerLabel: "true"}})
	if got, _ := p.choose(ct, nil); got != "d" {
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
		id, _ := p.choose(&jobPolicy{}, nil)
		seen[id]++
	}
	for _, id := range []string{"a", "b", "c"} {
		if seen[id] != 10 {
			t.Errorf("node %s chosen %d times of 30, want 10 (round-robin among equals): %v", id, seen[id], seen)
		}
	}
}

func TestPlacement_NoNodes(t *testing.T) {
	got, reason := newPlacement().choose(&jobPolicy{}, nil)
	if got != "" || !strings.Contains(reason, "none is registered") {
		t.Errorf("pick = %q (%s)", got, reason)
	}
}
