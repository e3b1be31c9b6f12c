package apiserver

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// apply parses and checks every file as `aion validate` does and, only if
// there is no problem at all, stores the set with store.Apply.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	prune, err := boolParam(r, "prune")
	if err != nil {
		return err
	}
	dryRun, err := boolParam(r, "dry_run")
	if err != nil {
		return err
	}
	var req api.ApplyRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Files) == 0 {
		return errorf(http.StatusBadRequest, "no files: send at least one job file")
	}
	var jobs []*jobspec.Job
	var problems jobspec.ErrorList
	for i, f := range req.Files {
		if f.Name == "" {
			return errorf(http.StatusBadRequest, "files[%d]: empty name: send the path the file was read from", i)
		}
		if len(f.Content) > jobspec.MaxFileSize {
			problems = append(problems, &jobspec.Error{File: f.Name, Msg: fmt.Sprintf("file larger than %d bytes", jobspec.MaxFileSize)})
			continue
		}
		parsed, errs := jobspec.Parse(f.Name, []byte(f.Content))
		jobs = append(jobs, parsed...)
		problems = append(problems, errs...)
	}
	problems = append(problems, jobspec.CheckSet(jobs)...)
	if len(problems) > 0 {
		// The order jobspec.Load reports in: by file, line and column.
		slices.SortStableFunc(problems, func(a, b *jobspec.Error) int {
			return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
		})
		// A few megabytes of bad YAML can hold a million problems; the
		// answer lists the first maxProblems.
		lines := make([]string, 0, min(len(problems), maxProblems+1))
		for _, p := range problems[:min(len(problems), maxProblems)] {
			lines = append(lines, p.Error())
		}
		if len(problems) > maxProblems {
			lines = append(lines, fmt.Sprintf("... and %d more", len(problems)-maxProblems))
		}
		return &httpError{status: http.StatusBadRequest, msg: problemCount(len(problems)) + " in the job files, nothing applied", problems: lines}
	}
	if len(jobs) == 0 {
		return errorf(http.StatusBadRequest, "the files define no jobs, nothing applied")
	}
	slices.SortFunc(jobs, func(a, b *jobspec.Job) int { return strings.Compare(a.Name, b.Name) })
	ctx, cancel := etcdContext(r)
	defer cancel()
	res, err := store.Apply(ctx, s.etcd, s.keys, jobs, prune, dryRun, s.now())
	if errors.Is(err, store.ErrConflict) {
		return errorf(http.StatusConflict, "%v; apply again", err)
	}
	if etcdRefusedSize(err) != nil {
		// store.Apply writes a set too large for one transaction in parts;
		// its error says how much was written when a part was refused.
		return errorf(http.StatusRequestEntityTooLarge, "applying %d jobs: %v", len(jobs), err)
	}
	if err != nil {
		return fmt.Errorf("apply %d jobs: %w", len(jobs), err)
	}
	for _, list := range []*[]string{&res.Created, &res.Updated, &res.Unchanged, &res.Deleted} {
		if *list == nil {
			*list = []string{}
		}
	}
	if !dryRun {
		s.log.Info("jobs applied", zap.Strings("created", res.Created), zap.Strings("updated", res.Updated),
			zap.Strings("deleted", res.Deleted), zap.Int("unchanged", len(res.Unchanged)))
	}
	writeJSON(w, http.StatusOK, api.ApplyResponse{ApplyResult: apiApplyResult(res), DryRun: dryRun, Prune: prune})
	return nil
}

// maxProblems bounds the problems an answer lists.
const maxProblems = 1000

func problemCount(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
