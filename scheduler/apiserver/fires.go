package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// recentFires returns up to limit fire records of job, newest first (see
// newestFires).
func (s *Server) recentFires(ctx context.Context, job string, limit int) ([]store.Fire, error) {
	fires, err := s.newestFires(ctx, s.keys.JobFires(job), limit)
	if err != nil {
		return nil, fmt.Errorf("read fires of %s: %w", job, err)
	}
	return fires, nil
}

// newestFires returns up to limit fire records under prefix, newest first:
// by PlannedAt, then by key. It asks etcd for twice the limit by create
// revision (the order the leader planned them in), which keeps the answer
// small; but etcd sorts before it limits, so it reads every record under
// prefix: for one job that is bounded by history retention, for all jobs
// (listRecentFires) it is every job's history.
func (s *Server) newestFires(ctx context.Context, prefix string, limit int) ([]store.Fire, error) {
	resp, err := s.etcd.Get(ctx, prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(int64(2*limit)))
	if err != nil {
		return nil, err
	}
	fires := make([]store.Fire, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var f store.Fire
		if err := json.Unmarshal(kv.Value, &f); err != nil {
			s.log.Warn("bad fire record in etcd", zap.String("key", string(kv.Key)), zap.Error(err))
			continue
		}
		fires = append(fires, f)
	}
	slices.SortFunc(fires, func(a, b store.Fire) int {
		if c := b.PlannedAt.Compare(a.PlannedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID.String(), a.ID.String())
	})
	return fires[:min(len(fires), limit)], nil
}

// listRecentFires lists the most recent fires of all jobs, newest first.
func (s *Server) listRecentFires(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r, "limit", api.DefaultFireLimit, 1, api.MaxFireLimit)
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	fires, err := s.newestFires(ctx, s.keys.Fires(), int(limit))
	if err != nil {
		return fmt.Errorf("read recent fires: %w", err)
	}
	writeJSON(w, http.StatusOK, api.FireList{Fires: apiFires(fires)})
	return nil
}

// listFires lists a job's fires; a deleted job's history is still listed.
func (s *Server) listFires(w http.ResponseWriter, r *http.Request) error {
	name, err := jobName(r, "name")
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", api.DefaultFireLimit, 1, api.MaxFireLimit)
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	fires, err := s.recentFires(ctx, name, int(limit))
	if err != nil {
		return err
	}
	if len(fires) == 0 {
		exists, err := s.exists(ctx, s.keys.Job(name))
		if err != nil {
			return err
		}
		if !exists {
			return errorf(http.StatusNotFound, "no job named %q, and no fires of one", name)
		}
	}
	writeJSON(w, http.StatusOK, api.FireList{Fires: apiFires(fires)})
	return nil
}

func (s *Server) readFire(ctx context.Context, id store.FireID) (store.Fire, error) {
	var f store.Fire
	resp, err := s.etcd.Get(ctx, s.keys.Fire(id))
	if err != nil {
		return f, fmt.Errorf("read fire %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return f, errorf(http.StatusNotFound, "no fire %s (a requested run has no record until the leader plans it)", id)
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &f); err != nil {
		return f, fmt.Errorf("decode fire %s: %w", id, err)
	}
	return f, nil
}

func (s *Server) getFire(w http.ResponseWriter, r *http.Request) error {
	id, err := fireID(r)
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	f, err := s.readFire(ctx, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiFire(f))
	return nil
}

// getLog fetches a piece of a fire's output from the executor that runs or
// ran it (NATS request-reply on its log subject).
func (s *Server) getLog(w http.ResponseWriter, r *http.Request) error {
	id, err := fireID(r)
	if err != nil {
		return err
	}
	offset, err := intParam(r, "offset", 0, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	f, err := s.readFire(ctx, id)
	if err != nil {
		return err
	}
	attempt, err := intParam(r, "attempt", 0, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	if attempt != 0 && int(attempt) != f.Attempt {
		return s.writeEarlierLog(w, r, id, f, int(attempt), offset)
	}
	// Final once no attempt can follow: the leader has recorded the end
	// (a failed attempt may still be retried until then).
	chunk := api.LogChunk{Fire: id.String(), State: api.FireState(f.State), Node: f.Node, Attempt: f.Attempt, Final: f.State.Final() && f.Processed, Offset: offset, Data: []byte{}}
	note, err := recordLogNote(id, f)
	if err != nil {
		return err
	}
	if note != "" {
		chunk.Note = note
		writeJSON(w, http.StatusOK, chunk)
		return nil
	}
	nodeChunk, err := s.askLog(r.Context(), id, f, offset)
	if err != nil {
		return err
	}
	if nodeChunk.Error != "" {
		if !f.State.Final() {
			// Claimed, but the process has not opened its output yet.
			chunk.Note = "no output yet"
			writeJSON(w, http.StatusOK, chunk)
			return nil
		}
		return errorf(http.StatusBadGateway, "executor %s: %s", f.Node, nodeChunk.Error)
	}
	if nodeChunk.Data != nil {
		chunk.Data = nodeChunk.Data
	}
	chunk.Size = nodeChunk.Size
	writeJSON(w, http.StatusOK, chunk)
	return nil
}

// writeEarlierLog answers a log request for an earlier attempt of f (the
// attempt query parameter): its output is kept by the executor that ran
// it, and is complete (Final).
func (s *Server) writeEarlierLog(w http.ResponseWriter, r *http.Request, id store.FireID, f store.Fire, attempt int, offset int64) error {
	i := slices.IndexFunc(f.Attempts, func(a store.Attempt) bool { return a.Attempt == attempt })
	if i < 0 {
		return errorf(http.StatusNotFound, "fire %s has no attempt %d (its attempts are 1 to %d)", id, attempt, f.Attempt)
	}
	a := f.Attempts[i]
	chunk := api.LogChunk{Fire: id.String(), State: api.FireState(a.State), Node: a.Node, Attempt: attempt, Final: true, Offset: offset, Data: []byte{}}
	if a.Node == "" {
		chunk.Note = fmt.Sprintf("attempt %d never started: %s", attempt, a.Reason)
		writeJSON(w, http.StatusOK, chunk)
		return nil
	}
	earlier := f
	earlier.Node, earlier.Attempt = a.Node, attempt
	nodeChunk, err := s.askLog(r.Context(), id, earlier, offset)
	if err != nil {
		return err
	}
	if nodeChunk.Error != "" {
		chunk.Note = fmt.Sprintf("attempt %d: %s", attempt, nodeChunk.Error)
		writeJSON(w, http.StatusOK, chunk)
		return nil
	}
	if nodeChunk.Data != nil {
		chunk.Data = nodeChunk.Data
	}
	chunk.Size = nodeChunk.Size
	writeJSON(w, http.StatusOK, chunk)
	return nil
}

// recordLogNote answers a log request from the fire record alone when
// there is no executor to ask: the note to send with an empty piece, or
// the error. With neither, the executor named in the record is asked.
func recordLogNote(id store.FireID, f store.Fire) (string, error) {
	switch {
	case f.State.Final() && f.OutputPath == "" && f.PID != 0 && f.OutputError == "":
		return "the run wrote no output", nil // executors create the file on the first byte
	case f.State.Final() && f.OutputPath == "":
		note := "no output was kept for this run"
		if f.Reason != "" {
			note += ": " + f.Reason
		}
		return note, nil
	case f.Node == "":
		msg := fmt.Sprintf("fire %s has no executor yet", id)
		if f.Reason != "" {
			msg += ": " + f.Reason
		}
		return "", errorf(http.StatusConflict, "%s", msg)
	case f.State == store.FirePlanned:
		return "not started yet", nil
	}
	return "", nil
}

// askLog asks the executor named in the fire record for the piece of its
// output from offset on, within logTimeout.
func (s *Server) askLog(ctx context.Context, id store.FireID, f store.Fire, offset int64) (store.LogChunk, error) {
	var nodeChunk store.LogChunk
	if !store.ValidNodeID(f.Node) {
		// Executors refuse such IDs; this record was not written by Aion.
		return nodeChunk, errorf(http.StatusBadGateway, "fire %s names executor %q, which is not a valid node ID: its output cannot be asked for", id, f.Node)
	}
	key, err := s.logSigningKey(ctx)
	if err != nil {
		return nodeChunk, err
	}
	logReq := store.LogRequest{Fire: id, Attempt: f.Attempt, Offset: offset}
	logReq.Sign(key, s.now().Add(store.LogRequestTTL))
	req, err := json.Marshal(logReq)
	if err != nil {
		return nodeChunk, fmt.Errorf("encode log request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	msg, err := s.nats.RequestWithContext(ctx, store.LogSubject(s.subjectPrefix, f.Node), req)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nodeChunk, errorf(http.StatusBadGateway, "executor %s does not answer for the output of %s: it is not running (the fire record keeps the last %d bytes)",
			f.Node, id, len(f.OutputTail))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nodeChunk, errorf(http.StatusBadGateway, "executor %s did not answer for the output of %s within %s (the fire record keeps the last %d bytes)",
			f.Node, id, logTimeout, len(f.OutputTail))
	case err != nil:
		return nodeChunk, errorf(http.StatusBadGateway, "asking executor %s for the output of %s: %v", f.Node, id, err)
	}
	if err := json.Unmarshal(msg.Data, &nodeChunk); err != nil {
		return nodeChunk, errorf(http.StatusBadGateway, "executor %s sent a bad answer for the output of %s: %v", f.Node, id, err)
	}
	return nodeChunk, nil
}

// killFire asks the leader to stop an open fire: a planned one is
// cancelled, a running one is killed by its executor.
func (s *Server) killFire(w http.ResponseWriter, r *http.Request) error {
	id, err := fireID(r)
	if err != nil {
		return err
	}
	var req api.KillRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		return err
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	f, err := s.readFire(ctx, id)
	if err != nil {
		return err
	}
	if f.State.Final() && f.Processed {
		return errorf(http.StatusConflict, "fire %s has ended (%s)", id, f.State)
	}
	by := requestedBy(r)
	if err := store.RequestKill(ctx, s.etcd, s.keys, id, by, s.now()); err != nil {
		// The history of a deleted job stays, but nothing acts on it.
		return requestError(err, id.Job, "kill")
	}
	s.log.Info("kill requested", zap.Stringer("fire", id), zap.String("by", by))
	writeJSON(w, http.StatusAccepted, api.KillResponse{Fire: id.String(), Status: "kill requested"})
	return nil
}
