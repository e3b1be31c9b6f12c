package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// defaultDevJobs is where `aion dev` looks for job files without --jobs:
// the repository's examples, when it runs in a clone.
const defaultDevJobs = "testdata/jobs"

// devJobs loads the job files dev applies. apply is false when there are
// none to apply: without --jobs outside a clone (no ./testdata/jobs), dev
// starts with the jobs its data directory already holds. An empty jobs
// directory is an empty set: applied, it removes every job. Problems in the
// files go to stderr, and dev does not start.
func (a *app) devJobs(jobsDir string, given bool) (jobs []*jobspec.Job, apply bool, err error) {
	if !given {
		if _, err := os.Stat(jobsDir); errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
	}
	if emptyDir(jobsDir) {
		return nil, true, nil
	}
	jobs, err = jobspec.Load(jobsDir)
	var problems jobspec.ErrorList
	if errors.As(err, &problems) {
		fmt.Fprintln(a.stderr, problems.Error())
		return nil, false, &exitError{code: exitFailure, err: fmt.Errorf("%s has %d problems; fix them and start again", jobsDir, len(problems))}
	}
	if err != nil {
		return nil, false, fmt.Errorf("load %s: %w", jobsDir, err)
	}
	a.printWarnings(jobspec.Warnings(jobs))
	return jobs, true, nil
}

// emptyDir reports whether path is a directory holding no job files. A
// directory that cannot be read is not empty: applying it as an empty set
// would prune every job it applied before.
func emptyDir(path string) bool {
	info, err := os.Stat(path)
	if err != nil || !info.IsDir() {
		return false
	}
	_, err = jobspec.Files(path)
	return errors.Is(err, jobspec.ErrNoJobFiles) // any other error is not "empty": loading reports it
}

// printDevJobs says what dev applied and lists the jobs, or says it
// applied none.
func (a *app) printDevJobs(jobsDir string, applied bool, res store.ApplyResult, jobs []*jobspec.Job) error {
	if !applied {
		_, err := fmt.Fprintf(a.stdout, "no job files: no --jobs, and no ./%s here; add jobs with aion apply -f DIR\n", defaultDevJobs)
		return err
	}
	if _, err := fmt.Fprintf(a.stdout, "applied %s: %d created, %d updated, %d unchanged, %d deleted\n",
		jobsDir, len(res.Created), len(res.Updated), len(res.Unchanged), len(res.Deleted)); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	return printJobSummary(a, jobs, time.Now(), "loaded")
}

// printDevReady prints dev's ready lines: where the API is, how to point
// the CLI at it, and where its admin token is.
func (a *app) printDevReady(addr, tokenFile string) {
	url := "http://" + addr
	fmt.Fprintf(a.stdout, "API at %s — point the CLI at it with --server %s or AION_SERVER=%s\n", url, url, url)
	if filepath.Clean(tokenFile) == filepath.Clean(defaultTokenFile) {
		fmt.Fprintf(a.stdout, "admin token in %s (0600): the CLI reads it when run in this directory; elsewhere use --token-file %s\n", tokenFile, abs(tokenFile))
	} else {
		fmt.Fprintf(a.stdout, "admin token in %s (0600): point the CLI at it with --token-file %s or AION_TOKEN_FILE=%s\n", tokenFile, abs(tokenFile), abs(tokenFile))
	}
	fmt.Fprintln(a.stdout, "runs appear below as they happen; Ctrl-C stops")
}

// abs is path made absolute, or path when that fails.
func abs(path string) string {
	if p, err := filepath.Abs(path); err == nil {
		return p
	}
	return path
}
