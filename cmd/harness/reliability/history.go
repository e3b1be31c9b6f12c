package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/scheduler/store"
)

// ReadHistory replays every change to Aion's keys from etcd's first
// revision to its current one, oldest first. It needs an etcd that holds
// only Aion's keys and was never compacted, as the test clusters are.
func ReadHistory(ctx context.Context, cli *clientv3.Client, keys store.Keys) ([]*clientv3.Event, error) {
	now, err := cli.Get(ctx, keys.Prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return nil, fmt.Errorf("read current revision: %w", err)
	}
	last := now.Header.Revision
	// A bound for a replay that stalls; a long soak's history (hundreds
	// of thousands of changes) takes seconds.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var events []*clientv3.Event
	for resp := range cli.Watch(ctx, keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(1)) {
		if err := resp.Err(); err != nil {
			return nil, fmt.Errorf("replay history: %w", err)
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision > last {
				return events, nil
			}
			events = append(events, ev)
			if ev.Kv.ModRevision == last {
				return events, nil
			}
		}
	}
	return events, fmt.Errorf("replay history up to revision %d: %w", last, ctx.Err())
}

// HistoryReport is what the history of the keys shows about the protocol.
type HistoryReport struct {
	Events int
	// HighWaterBackwards lists each job state write that moved the
	// job's high-water mark back in time.
	HighWaterBackwards []string
	// WrongTerms lists each leader write of a fire record (a creation or
	// any change other than an executor's claim or result) whose term is
	// not the term of the leader at its revision: written by a scheduler
	// that did not lead, or by none.
	WrongTerms []string
	// BadClaims lists each claim (planned → running) made by a node
	// without a live registration, of a record whose last leader write
	// was wrong, on another node than the record named, or changing the
	// record's term.
	BadClaims []string
	// BadResults lists each result (running → final, the term kept) that
	// names another node than the one that claimed the attempt.
	BadResults []string
}

// Violations lists every finding, one per line.
func (h HistoryReport) Violations() []string {
	var v []string
	for _, l := range [][]string{h.HighWaterBackwards, h.WrongTerms, h.BadClaims, h.BadResults} {
		v = append(v, l...)
	}
	return v
}

// CheckHistory replays the history of the keys, nothing of which it takes
// on trust from the records' own fields about who wrote them:
//
//   - The leader at each revision is the holder of the oldest live key
//     under the election prefix (etcd's election rule); its term is that
//     key's creation revision, the value its fence compares.
//   - Every write of a fire record is a claim (planned → running of the
//     same attempt on the record's node), a result (running → final of the
//     claimed attempt, keeping the term the executor read), or else a
//     leader write, whose Term must be the leader's term at its revision.
//   - A claim's node must have a live registration (nodes/<id>, replayed
//     from the same history) at the claim's revision, and the record it
//     claims must have been last written by a leader write that passed.
//   - A result must name the node that claimed its attempt.
//   - Each job's high-water mark only moves forward (a job deleted and
//     applied again starts afresh).
func CheckHistory(keys store.Keys, events []*clientv3.Event) HistoryReport {
	h := HistoryReport{Events: len(events)}
	candidates := make(map[string]int64) // election key → its creation revision
	term := func() int64 {
		var oldest int64
		for _, created := range candidates {
			if oldest == 0 || created < oldest {
				oldest = created
			}
		}
		return oldest
	}
	type claim struct {
		attempt int
		node    string
		term    int64
	}
	type fireKey struct {
		last     *store.Fire // the record as last written (nil: absent)
		leaderOK bool        // its last leader write had the leader's term
		claim    *claim      // the claim of the running attempt
	}
	fires := make(map[string]*fireKey)
	nodes := make(map[string]bool) // registered node IDs
	highWater := make(map[string]time.Time)
	for _, ev := range events {
		key, rev := string(ev.Kv.Key), ev.Kv.ModRevision
		switch {
		case strings.HasPrefix(key, keys.Election()):
			if ev.Type == mvccpb.DELETE {
				delete(candidates, key)
			} else {
				candidates[key] = ev.Kv.CreateRevision
			}
		case strings.HasPrefix(key, keys.Nodes()):
			nodes[strings.TrimPrefix(key, keys.Nodes())] = ev.Type != mvccpb.DELETE
		case strings.HasPrefix(key, keys.States()):
			job := strings.TrimPrefix(key, keys.States())
			if ev.Type == mvccpb.DELETE {
				delete(highWater, job)
				continue
			}
			var st store.JobState
			if json.Unmarshal(ev.Kv.Value, &st) != nil {
				continue
			}
			if prev, ok := highWater[job]; ok && st.HighWater.Before(prev) {
				h.HighWaterBackwards = append(h.HighWaterBackwards, fmt.Sprintf("%s: high-water mark moved back from %s to %s at revision %d",
					job, prev.Format(time.RFC3339), st.HighWater.Format(time.RFC3339), rev))
			}
			highWater[job] = st.HighWater
		case strings.HasPrefix(key, keys.Fires()):
			if ev.Type == mvccpb.DELETE {
				delete(fires, key)
				continue
			}
			var f store.Fire
			if json.Unmarshal(ev.Kv.Value, &f) != nil {
				h.WrongTerms = append(h.WrongTerms, fmt.Sprintf("%s: undecodable record written at revision %d", key, rev))
				continue
			}
			fk := fires[key]
			if fk == nil || ev.IsCreate() {
				fk = &fireKey{}
				fires[key] = fk
			}
			prev := fk.last
			fk.last = &f
			switch {
			case prev != nil && prev.State == store.FirePlanned && f.State == store.FireRunning && f.Attempt == prev.Attempt:
				// A claim.
				switch {
				case f.Node != prev.Node:
					h.BadClaims = append(h.BadClaims, fmt.Sprintf("%s attempt %d claimed at revision %d by %s, but the record named %s",
						f.ID, f.Attempt, rev, f.Node, prev.Node))
				case !nodes[f.Node]:
					h.BadClaims = append(h.BadClaims, fmt.Sprintf("%s attempt %d claimed at revision %d by %s, which had no live registration (%s)",
						f.ID, f.Attempt, rev, f.Node, keys.Node(f.Node)))
				case !fk.leaderOK:
					h.BadClaims = append(h.BadClaims, fmt.Sprintf("%s attempt %d claimed at revision %d by %s, of a record not last written by the leader",
						f.ID, f.Attempt, rev, f.Node))
				case f.Term != prev.Term:
					h.BadClaims = append(h.BadClaims, fmt.Sprintf("%s attempt %d claimed at revision %d by %s changed the term from %d to %d",
						f.ID, f.Attempt, rev, f.Node, prev.Term, f.Term))
				}
				fk.claim = &claim{attempt: f.Attempt, node: f.Node, term: f.Term}
			case prev != nil && prev.State == store.FireRunning && f.State.Final() && f.Attempt == prev.Attempt &&
				(f.Term == prev.Term || fk.claim != nil && fk.claim.attempt == f.Attempt && f.Term == fk.claim.term):
				// A result: the executor keeps the term it read (a leader
				// of the same term marking the run lost looks the same,
				// and keeps the node too).
				if c := fk.claim; c == nil || c.attempt != f.Attempt {
					h.BadResults = append(h.BadResults, fmt.Sprintf("%s attempt %d: result written at revision %d by %s, but the attempt was never claimed",
						f.ID, f.Attempt, rev, f.Node))
				} else if f.Node != c.node {
					h.BadResults = append(h.BadResults, fmt.Sprintf("%s attempt %d: result written at revision %d by %s, but %s claimed it",
						f.ID, f.Attempt, rev, f.Node, c.node))
				}
			default:
				// A leader write.
				l := term()
				fk.leaderOK = f.Term == l && l != 0
				switch {
				case l == 0:
					h.WrongTerms = append(h.WrongTerms, fmt.Sprintf("%s attempt %d written at revision %d with term %d while no scheduler led",
						f.ID, f.Attempt, rev, f.Term))
				case f.Term != l:
					h.WrongTerms = append(h.WrongTerms, fmt.Sprintf("%s attempt %d written at revision %d with term %d while the leader's term was %d",
						f.ID, f.Attempt, rev, f.Term, l))
				}
			}
		}
	}
	return h
}

// Revisions say when, in etcd's history, a fire record was created and
// when it was closed: first written in a final state, or deleted (0: open
// at the end of the history). ClosedNotBefore bounds from below the time
// it was closed: the latest time a write at or before that revision says
// it was made (a record's planned_at when it was created, a claim's
// started_at), for the time at which the leader may first have seen it.
type Revisions struct {
	Created, Closed int64
	ClosedNotBefore time.Time
}

// FiresFromHistory returns the last version of every fire record the
// history shows written, including those the leader's compaction deleted
// since (scheduler.history), in the order they were first written, and
// the revisions at which each was created and closed; records that do not
// decode are left out (CheckHistory reports them).
func FiresFromHistory(keys store.Keys, events []*clientv3.Event) ([]store.Fire, map[store.FireID]Revisions) {
	index := make(map[string]int)
	var fires []store.Fire
	revs := make(map[store.FireID]Revisions)
	var clock time.Time // the latest time a write so far says it was made
	for _, ev := range events {
		key := string(ev.Kv.Key)
		id, ok := keys.FireIDFromKey(key)
		if !ok {
			continue
		}
		r := revs[id]
		if ev.Type == mvccpb.DELETE {
			if r.Closed == 0 {
				r.Closed, r.ClosedNotBefore = ev.Kv.ModRevision, clock
				revs[id] = r
			}
			continue
		}
		var f store.Fire
		if json.Unmarshal(ev.Kv.Value, &f) != nil {
			continue
		}
		switch {
		case ev.IsCreate() && f.PlannedAt.After(clock):
			clock = f.PlannedAt
		case f.State == store.FireRunning && f.StartedAt.After(clock):
			clock = f.StartedAt
		}
		if r.Created == 0 {
			r.Created = ev.Kv.CreateRevision
		}
		if r.Closed == 0 && f.State.Final() {
			r.Closed, r.ClosedNotBefore = ev.Kv.ModRevision, clock
		}
		revs[id] = r
		if i, ok := index[key]; ok {
			fires[i] = f
			continue
		}
		index[key] = len(fires)
		fires = append(fires, f)
	}
	return fires, revs
}
