package apiserver

import (
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// The conversions from etcd records (package store) to the API's types
// (package api), field by field. They are the one place where storage
// meets the wire format; convert_test.go checks that every field is
// carried and that the JSON is the record's, but for the values of a
// fire's env overrides, which are hidden (jobspec.SecretPlaceholder).

func apiFireID(id store.FireID) api.FireID { return api.FireID{Job: id.Job, Suffix: id.Suffix} }

func apiFire(f store.Fire) api.Fire {
	return api.Fire{
		ID:              apiFireID(f.ID),
		Trigger:         api.Trigger(f.Trigger),
		Nominal:         f.Nominal,
		State:           api.FireState(f.State),
		Reason:          f.Reason,
		Attempt:         f.Attempt,
		Node:            f.Node,
		Env:             hiddenValues(f.Env),
		Args:            f.Args,
		Downstream:      f.Downstream,
		NotBefore:       f.NotBefore,
		After:           f.After,
		Backfill:        f.Backfill,
		Parallel:        f.Parallel,
		Attempts:        apiAttempts(f.Attempts),
		RequestedBy:     f.RequestedBy,
		Kill:            apiFireKill(f.Kill),
		PlannedAt:       f.PlannedAt,
		PlannedBy:       f.PlannedBy,
		Term:            f.Term,
		Lease:           f.Lease,
		FenceTimeout:    f.FenceTimeout,
		StartedAt:       f.StartedAt,
		EndedAt:         f.EndedAt,
		PID:             f.PID,
		ExitCode:        f.ExitCode,
		OutputTail:      f.OutputTail,
		OutputPath:      f.OutputPath,
		OutputError:     f.OutputError,
		OutputTruncated: f.OutputTruncated,
		OutputLimit:     f.OutputLimit,
		Processed:       f.Processed,
	}
}

// hiddenValues shows a manual run's --env overrides by name only: their
// values are not echoed back (they may be secrets).
func hiddenValues(env map[string]string) map[string]string {
	if env == nil {
		return nil
	}
	out := make(map[string]string, len(env))
	for k := range env {
		out[k] = jobspec.SecretPlaceholder
	}
	return out
}

func apiFireKill(k *store.FireKill) *api.FireKill {
	if k == nil {
		return nil
	}
	return &api.FireKill{Attempt: k.Attempt, Reason: k.Reason, At: k.At}
}

func apiFires(fires []store.Fire) []api.Fire {
	if fires == nil {
		return nil
	}
	out := make([]api.Fire, len(fires))
	for i, f := range fires {
		out[i] = apiFire(f)
	}
	return out
}

func apiAttempts(attempts []store.Attempt) []api.Attempt {
	if attempts == nil {
		return nil
	}
	out := make([]api.Attempt, len(attempts))
	for i, a := range attempts {
		out[i] = api.Attempt{
			Attempt:   a.Attempt,
			Node:      a.Node,
			State:     api.FireState(a.State),
			Reason:    a.Reason,
			ExitCode:  a.ExitCode,
			StartedAt: a.StartedAt,
			EndedAt:   a.EndedAt,
		}
	}
	return out
}

func apiJobState(st store.JobState) api.JobState {
	return api.JobState{
		HighWater:     st.HighWater,
		AppliedAt:     st.AppliedAt,
		LastFire:      st.LastFire,
		LastResult:    api.FireState(st.LastResult),
		LastSuccess:   st.LastSuccess,
		LastDone:      st.LastDone,
		LastTriggered: st.LastTriggered,
		Skipped:       st.Skipped,
		Paused:        st.Paused,
		PauseNote:     st.PauseNote,
		PausedAt:      st.PausedAt,
		PausedBy:      st.PausedBy,
		Planned:       st.Planned,
	}
}

func apiNode(n store.Node) api.Node {
	return api.Node{ID: n.ID, Labels: n.Labels, Slots: n.Slots, StartedAt: n.StartedAt, Lock: n.Lock, PID: n.PID, Lease: n.Lease, Policy: n.Policy}
}

func apiApplyResult(r store.ApplyResult) api.ApplyResult {
	return api.ApplyResult{Created: r.Created, Updated: r.Updated, Unchanged: r.Unchanged, Deleted: r.Deleted, Kept: r.Kept, Owners: r.Owners}
}
