package scheduler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// placement is the leader's table of live executors and chooses the node
// for each run. Liveness comes from registrations in etcd; load averages
// from NATS reports; the runs counted against each node are the open fires
// assigned to it in etcd (planned or running), so a burst of dispatches
// counts at once, before any report. reserve and release are the only
// writers of those counts: the open-fire table reserves a slot for each
// open fire and releases it when the fire closes, and the planner and the
// waiting queue reserve the slots of the fires of a transaction they
// build until it is done, so that many fires at once spread over the
// nodes. (Dependent fires, backfills and revived paused times are placed
// without that: a backfill chunk may lean on one node until its fires
// count.)
type placement struct {
	nodes    map[string]*nodeInfo
	ids      []string       // the keys of nodes, sorted: choose's order
	assigned map[string]int // open fires per node ("": fires without a node)
	turn     int            // round-robin among equals
}

type nodeInfo struct {
	reg  store.Node
	load store.LoadReport
}

func newPlacement() *placement {
	return &placement{nodes: make(map[string]*nodeInfo), assigned: make(map[string]int)}
}

func (p *placement) register(n store.Node) {
	if info, ok := p.nodes[n.ID]; ok {
		info.reg = n
		return
	}
	p.nodes[n.ID] = &nodeInfo{reg: n}
	i, _ := slices.BinarySearch(p.ids, n.ID)
	p.ids = slices.Insert(p.ids, i, n.ID)
}

func (p *placement) unregister(id string) {
	if _, ok := p.nodes[id]; !ok {
		return
	}
	delete(p.nodes, id)
	if i, found := slices.BinarySearch(p.ids, id); found {
		p.ids = slices.Delete(p.ids, i, i+1)
	}
}

func (p *placement) live(id string) bool { _, ok := p.nodes[id]; return ok }

// count is the number of live executors.
func (p *placement) count() int { return len(p.nodes) }

// reserve counts one more open fire against node.
func (p *placement) reserve(node string) { p.assigned[node]++ }

// release counts one open fire less against node.
func (p *placement) release(node string) {
	if p.assigned[node]--; p.assigned[node] == 0 {
		delete(p.assigned, node)
	}
}

// freeSlots is the number of runs the live nodes can still take.
func (p *placement) freeSlots() int {
	free := 0
	for id, info := range p.nodes {
		free += max(max(info.reg.Slots, 1)-p.assigned[id], 0)
	}
	return free
}

func (p *placement) report(r store.LoadReport) {
	if info, ok := p.nodes[r.Node]; ok {
		info.load = r
	}
}

// choose picks the eligible node with the lowest share of busy slots; ties
// go to the lower load average, then round-robin. It returns "" and the
// reason when no node is eligible.
func (p *placement) choose(job *jobPolicy, sels []jobspec.Selector) (string, string) {
	var best []string
	bestShare, bestLoad := 2.0, 0.0
	full, unmatched := 0, 0
	for _, id := range p.ids {
		info := p.nodes[id]
		if !jobspec.MatchAll(sels, info.reg.Labels) || (job.Container && info.reg.Labels[store.DockerLabel] != "true") {
			unmatched++
			continue
		}
		slots := max(info.reg.Slots, 1)
		if p.assigned[id] >= slots {
			full++
			continue
		}
		share := float64(p.assigned[id]) / float64(slots)
		switch {
		case share < bestShare || (share == bestShare && info.load.Load1 < bestLoad):
			best, bestShare, bestLoad = []string{id}, share, info.load.Load1
		case share == bestShare && info.load.Load1 == bestLoad:
			best = append(best, id)
		}
	}
	if len(best) == 0 {
		return "", p.whyNone(job, sels, full, unmatched)
	}
	p.turn++
	return best[p.turn%len(best)], ""
}

func (p *placement) whyNone(job *jobPolicy, sels []jobspec.Selector, full, unmatched int) string {
	switch {
	case len(p.nodes) == 0:
		return "waiting for an executor: none is registered"
	case full > 0 && unmatched == 0:
		return fmt.Sprintf("waiting for a free slot: all %d eligible executors are full", full)
	default:
		var needs []string
		for _, s := range sels {
			needs = append(needs, s.String())
		}
		if job.Container {
			needs = append(needs, store.DockerLabel+"=true")
		}
		return fmt.Sprintf("waiting for an executor matching %s (%d full, %d not matching)", strings.Join(needs, ", "), full, unmatched)
	}
}
