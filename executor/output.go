package executor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aionsched/aion/executor/runoutput"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// recordOutput writes what was kept of a run's output into its record.
func recordOutput(k runoutput.Kept, f *store.Fire) {
	f.OutputTail, f.OutputPath, f.OutputError = k.Tail, k.Path, k.Err
	f.OutputTruncated, f.OutputLimit = k.Limit > 0, k.Limit
}

// outputLimit is the output limit of a run of job: its own, else this
// executor's.
func (x *Executor) outputLimit(job *jobspec.Job) int64 {
	if job.OutputLimit > 0 {
		return int64(job.OutputLimit)
	}
	return x.cfg.OutputLimit
}

// newKeeper returns the keeper of a container run of job whose output
// goes to path (a host run's supervisor keeps its own).
func (x *Executor) newKeeper(job *jobspec.Job, path string) *runoutput.Keeper {
	return &runoutput.Keeper{Path: path, Limit: x.outputLimit(job), TailBytes: x.cfg.TailBytes, Create: x.createOutput}
}

// createOutput creates an output file, and its directory the first time.
func (x *Executor) createOutput(path string) (*os.File, error) {
	if err := x.ensureDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := runoutput.OpenFile(path)
	if errors.Is(err, fs.ErrNotExist) { // the directory went since it was cached
		x.dirs.Delete(filepath.Dir(path))
		if err = x.ensureDir(filepath.Dir(path)); err == nil {
			f, err = runoutput.OpenFile(path)
		}
	}
	return f, err
}

// ensureDir creates an output directory, only the executor's to read, once;
// later runs of the job find it in the cache and cost no file system call.
func (x *Executor) ensureDir(dir string) error {
	if _, ok := x.dirs.Load(dir); ok {
		return nil
	}
	if err := runoutput.MakeDir(dir); err != nil {
		return err
	}
	x.dirs.Store(dir, struct{}{})
	return nil
}

// makeOutputRoot creates the executor's output directory, mode 0700, when
// it is missing; one that exists keeps the mode its owner gave it.
func (x *Executor) makeOutputRoot() error {
	if _, err := os.Stat(x.cfg.OutputDir); err == nil {
		return nil
	}
	return runoutput.MakeDir(x.cfg.OutputDir)
}
