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

// lease is the etcd lease of node id's registration (0: none known).
func (p *placement) lease(id string) int64 {
	if info, ok := p.nodes[id]; ok {
		return info.reg.Lease
	}
	return 0
}

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

// choose picks, for a run of the job e, the eligible node with the lowest
// share of busy slots; ties go to the lower load average, then
// round-robin. A node is eligible when its labels match the job's
// constraints (and it has Docker, for a container job) and its policy
// allows the job (jobspec.NodePolicy.Check, which the executor checks
// again). It returns "" and the reason when no node is eligible.
func (p *placement) choose(e *jobEntry) (string, string) {
	var best []string
	bestShare, bestLoad := 2.0, 0.0
	var why whyNot
	for _, id := range p.ids {
		info := p.nodes[id]
		if !jobspec.MatchAll(e.sels, info.reg.Labels) || (e.policy.Container && info.reg.Labels[store.DockerLabel] != "true") {
			why.unmatched++
			continue
		}
		if e.needs != nil {
			if err := info.reg.NodePolicy().Check(e.needs); err != nil {
				why.deny(id, err)
				continue
			}
		}
		slots := max(info.reg.Slots, 1)
		if p.assigned[id] >= slots {
			why.full++
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
		return "", p.whyNone(e, why)
	}
	p.turn++
	return best[p.turn%len(best)], ""
}

// whyNot counts why nodes were not chosen: full, not matching, or whose
// policy forbids the job (with the first few reasons).
type whyNot struct {
	full, unmatched, denied int
	reasons                 []string
}

// maxDenyReasons bounds the nodes a waiting reason names.
const maxDenyReasons = 3

func (w *whyNot) deny(node string, err error) {
	if w.denied++; len(w.reasons) < maxDenyReasons {
		w.reasons = append(w.reasons, "node "+node+": "+err.Error())
	}
}

func (w *whyNot) denials() string {
	s := strings.Join(w.reasons, "; ")
	if more := w.denied - len(w.reasons); more > 0 {
		s += fmt.Sprintf("; and %d more", more)
	}
	return s
}

func (p *placement) whyNone(e *jobEntry, why whyNot) string {
	switch {
	case len(p.nodes) == 0:
		return "waiting for an executor: none is registered"
	case why.full > 0 && why.unmatched == 0 && why.denied == 0:
		return fmt.Sprintf("waiting for a free slot: all %d eligible executors are full", why.full)
	case why.denied > 0 && why.unmatched == 0 && why.full == 0:
		return "waiting for an executor whose policy allows the job: " + why.denials()
	case why.denied > 0 && why.unmatched == 0:
		return fmt.Sprintf("waiting for a free slot: all %d eligible executors are full; the others' policies forbid the job: %s", why.full, why.denials())
	default:
		var needs []string
		for _, s := range e.sels {
			needs = append(needs, s.String())
		}
		if e.policy.Container {
			needs = append(needs, store.DockerLabel+"=true")
		}
		reason := fmt.Sprintf("waiting for an executor matching %s (%d full, %d not matching", strings.Join(needs, ", "), why.full, why.unmatched)
		if why.denied > 0 {
			return reason + fmt.Sprintf(", %d whose policy forbids the job: %s)", why.denied, why.denials())
		}
		return reason + ")"
	}
}
