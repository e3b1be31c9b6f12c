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
	jobs, problems, err := parseFiles(req.Files)
	if err != nil {
		return err
	}
	problems = append(problems, jobspec.CheckSet(jobs)...)
	if len(problems) > 0 {
		return problemsError(problems)
	}
	if len(jobs) == 0 {
		return errorf(http.StatusBadRequest, "the files define no jobs, nothing applied")
	}
	slices.SortFunc(jobs, func(a, b *jobspec.Job) int { return strings.Compare(a.Name, b.Name) })
	res, err := s.storeJobs(r, jobs, prune, dryRun)
	if err != nil {
		return err
	}
	for _, list := range []*[]string{&res.Created, &res.Updated, &res.Unchanged, &res.Deleted} {
		if *list == nil {
			*list = []string{}
		}
	}
	if !dryRun {
		s.log.Info("jobs applied", zap.Int("created", len(res.Created)), zap.Int("updated", len(res.Updated)),
			zap.Int("deleted", len(res.Deleted)), zap.Int("unchanged", len(res.Unchanged)), someNames("changed", res.Created, res.Updated, res.Deleted))
	}
	writeJSON(w, http.StatusOK, api.ApplyResponse{ApplyResult: apiApplyResult(res), DryRun: dryRun, Prune: prune})
	return nil
}

// parseFiles parses each file on its own: the jobs and problems of all of
// them, or the error of a file sent without a name.
func parseFiles(files []api.File) ([]*jobspec.Job, jobspec.ErrorList, error) {
	var jobs []*jobspec.Job
	var problems jobspec.ErrorList
	for i, f := range files {
		if f.Name == "" {
			return nil, nil, errorf(http.StatusBadRequest, "files[%d]: empty name: send the path the file was read from", i)
		}
		if len(f.Content) > jobspec.MaxFileSize {
			problems = append(problems, &jobspec.Error{File: f.Name, Msg: fmt.Sprintf("file larger than %d bytes", jobspec.MaxFileSize)})
			continue
		}
		parsed, errs := jobspec.Parse(f.Name, []byte(f.Content))
		jobs = append(jobs, parsed...)
		problems = append(problems, errs...)
	}
	return jobs, problems, nil
}

// problemsError is the answer to a set with problems.
func problemsError(problems jobspec.ErrorList) *httpError {
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

// storeJobs stores a checked set of jobs, sorted by name, with
// store.Apply, and says why etcd did not take it.
func (s *Server) storeJobs(r *http.Request, jobs []*jobspec.Job, prune, dryRun bool) (store.ApplyResult, error) {
	ctx, cancel := etcdContext(r)
	defer cancel()
	res, err := store.Apply(ctx, s.etcd, s.keys, jobs, prune, dryRun, s.now())
	if errors.Is(err, store.ErrConflict) {
		return res, errorf(http.StatusConflict, "%v; apply again", err)
	}
	if etcdRefusedSize(err) != nil {
		// store.Apply writes a set too large for one transaction in parts;
		// its error says how much was written when a part was refused.
		return res, errorf(http.StatusRequestEntityTooLarge, "applying %d jobs: %v", len(jobs), err)
	}
	if err != nil {
		return res, fmt.Errorf("apply %d jobs: %w", len(jobs), err)
	}
	return res, nil
}

// maxProblems bounds the problems an answer lists.
const maxProblems = 1000

func problemCount(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
