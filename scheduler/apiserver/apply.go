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
// there is no problem at all, stores the set with store.Apply, which
// checks parents against the stored jobs too.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) error {
	opt, err := applyOptions(r)
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
	if len(problems) > 0 {
		return s.setProblems(r, jobs, problems)
	}
	if len(jobs) == 0 {
		return errorf(http.StatusBadRequest, "the files define no jobs, nothing applied")
	}
	opt.Set, opt.Implicit = req.Set, req.Set == ""
	if opt.Implicit {
		opt.Set = cmp.Or(req.DefaultSet, defaultSet(req.Files))
	}
	if err := store.CheckSetName(opt.Set); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	slices.SortFunc(jobs, func(a, b *jobspec.Job) int { return strings.Compare(a.Name, b.Name) })
	res, err := s.storeJobs(r, jobs, opt)
	if err != nil {
		return err
	}
	for _, list := range []*[]string{&res.Created, &res.Updated, &res.Unchanged, &res.Deleted, &res.Kept} {
		if *list == nil {
			*list = []string{}
		}
	}
	if !opt.DryRun {
		s.log.Info("jobs applied", zap.String("set", opt.Set), zap.Int("created", len(res.Created)), zap.Int("updated", len(res.Updated)),
			zap.Int("deleted", len(res.Deleted)), zap.Int("unchanged", len(res.Unchanged)), someNames("changed", res.Created, res.Updated, res.Deleted))
	}
	writeJSON(w, http.StatusOK, api.ApplyResponse{ApplyResult: apiApplyResult(res), Set: opt.Set, DryRun: opt.DryRun,
		Prune: opt.Prune || opt.PruneAll, PruneAll: opt.PruneAll})
	return nil
}

// setProblems answers a set whose files have problems with those and the
// set's own (parents, against the stored jobs too), as `aion validate`
// lists them all.
func (s *Server) setProblems(r *http.Request, jobs []*jobspec.Job, problems jobspec.ErrorList) error {
	ctx, cancel := etcdContext(r)
	defer cancel()
	more, err := store.CheckParents(ctx, s.etcd, s.keys, jobs)
	if err != nil {
		return fmt.Errorf("check the parents of %d jobs: %w", len(jobs), err)
	}
	return problemsError(append(problems, more...))
}

// applyOptions reads an apply's query parameters; prune_all implies prune.
func applyOptions(r *http.Request) (store.ApplyOptions, error) {
	var opt store.ApplyOptions
	for _, p := range []struct {
		name string
		to   *bool
	}{{"prune", &opt.Prune}, {"prune_all", &opt.PruneAll}, {"force_conflicts", &opt.ForceConflicts}, {"dry_run", &opt.DryRun}} {
		v, err := boolParam(r, p.name)
		if err != nil {
			return opt, err
		}
		*p.to = v
	}
	return opt, nil
}

// defaultSet is the apply set of a request that names none: its file
// names, sorted, joined by commas.
func defaultSet(files []api.File) string {
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), ",")
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

// storeJobs stores a parsed set of jobs, sorted by name, with
// store.Apply, and says why it or etcd did not take it.
func (s *Server) storeJobs(r *http.Request, jobs []*jobspec.Job, opt store.ApplyOptions) (store.ApplyResult, error) {
	ctx, cancel := etcdContext(r)
	defer cancel()
	res, err := store.Apply(ctx, s.etcd, s.keys, jobs, opt, s.now())
	var problems jobspec.ErrorList
	var setConflict *store.SetConflictError
	var parents *store.ParentError
	switch {
	case errors.As(err, &problems):
		return res, problemsError(problems)
	case errors.As(err, &setConflict), errors.As(err, &parents):
		return res, errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, store.ErrConflict):
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
