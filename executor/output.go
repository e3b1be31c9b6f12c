package executor

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Output files and their directories are the executor's alone: a run's
// output may hold secrets. The modes are set after creation, so the
// umask cannot widen or narrow them.
const (
	outputFileMode = 0o600
	outputDirMode  = 0o700
)

// keeper keeps a run's output: in its file, created when the first byte
// arrives and capped at limit bytes, and its last tailBytes in memory, so
// the record has the real end of the output even when the file was cut
// short or could not be written. Most cron jobs are silent, and creating
// a file cost about 0.23 ms of CPU each on the ext4 disks measured: a
// fifth of all CPU at 1,000 runs a second (BENCHMARKS.md).
//
// Writes never fail: a run must not block or die because its output
// could not be kept; the first error is kept for the record instead.
type keeper struct {
	path      string
	limit     int64 // 0: no limit
	tailBytes int
	create    func(string) (*os.File, error)

	mu        sync.Mutex
	file      *os.File // nil until output arrives
	err       error    // the first error creating or writing the file
	written   int64    // bytes written to the file
	truncated bool     // output came past the limit
	tail      []byte
}

// Write keeps p: its end in the tail, and in the file what fits under the
// limit. It always reports p written.
func (k *keeper) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keepTail(p)
	if k.err != nil {
		return len(p), nil
	}
	if k.file == nil {
		f, err := k.create(k.path)
		if err != nil {
			k.err = fmt.Errorf("create output file: %w", err)
			return len(p), nil
		}
		k.file = f
	}
	n := int64(len(p))
	if k.limit > 0 && k.written+n > k.limit {
		n, k.truncated = k.limit-k.written, true
	}
	if n > 0 {
		m, err := k.file.Write(p[:n])
		k.written += int64(m)
		if err != nil {
			k.err = fmt.Errorf("write output file (%d bytes kept): %w", k.written, err)
		}
	}
	return len(p), nil
}

// keepTail appends p to the tail and trims it to tailBytes, copying only
// when the tail has grown to twice that.
func (k *keeper) keepTail(p []byte) {
	if k.tailBytes <= 0 {
		return
	}
	if len(p) >= k.tailBytes {
		k.tail = append(k.tail[:0], p[len(p)-k.tailBytes:]...)
		return
	}
	k.tail = append(k.tail, p...)
	if len(k.tail) >= 2*k.tailBytes {
		k.tail = append(k.tail[:0], k.tail[len(k.tail)-k.tailBytes:]...)
	}
}

// kept is what a run's record says of its output.
type kept struct {
	tail, path string
	err        error // why the output was not kept, or not all of it
	limit      int64 // set when the output was truncated at it
}

// record writes what was kept into the fire record.
func (o kept) record(f *store.Fire) {
	f.OutputTail, f.OutputPath = o.tail, o.path
	f.OutputError = ""
	if o.err != nil {
		f.OutputError = o.err.Error()
	}
	f.OutputTruncated, f.OutputLimit = o.limit > 0, o.limit
}

// result is what was kept so far; k.mu must be held. When nothing came
// through it, the job may still have written to $AION_OUTPUT itself.
func (k *keeper) result() kept {
	memTail := func() string { return strings.ToValidUTF8(string(k.tail[max(len(k.tail)-k.tailBytes, 0):]), "\uFFFD") }
	res := kept{err: k.err}
	if k.truncated {
		res.limit = k.limit
	}
	switch {
	case k.file == nil && k.err == nil:
		res.tail, res.path = writtenByTheJob(k.path, k.tailBytes)
	case k.file == nil: // the file could not be created
		res.tail = memTail()
	case k.err != nil || k.truncated:
		res.tail, res.path = memTail(), k.path
	default: // the whole output is in the file, with any the job wrote there itself
		res.tail, res.path = readTail(k.file, k.tailBytes), k.path
	}
	return res
}

// errOutputClosed stops writes that come after close (from a copy that
// outlived its run) from creating the file again.
var errOutputClosed = errors.New("output closed")

// close ends the output of a run that wrote to k directly (a container
// run): it returns what was kept and closes the file.
func (k *keeper) close() kept {
	k.mu.Lock()
	defer k.mu.Unlock()
	res := k.result()
	if k.file != nil {
		if err := k.file.Close(); err != nil && res.err == nil {
			res.err = fmt.Errorf("close output file: %w", err)
		}
	}
	k.file, k.err = nil, errOutputClosed
	return res
}

// outputLimit is the output limit of a run of job: its own, else this
// executor's.
func (x *Executor) outputLimit(job *jobspec.Job) int64 {
	if job.OutputLimit > 0 {
		return int64(job.OutputLimit)
	}
	return x.cfg.OutputLimit
}

// newKeeper returns the keeper of a run of job whose output goes to path.
func (x *Executor) newKeeper(job *jobspec.Job, path string) *keeper {
	return &keeper{path: path, limit: x.outputLimit(job), tailBytes: x.cfg.TailBytes, create: x.createOutput}
}

// output collects a host run's stdout and stderr through a pipe into a
// keeper. From the first byte on, everything goes to the file as it
// comes, so `aion logs` follows a running job.
//
// The copy runs in its own goroutine until every holder of the pipe has
// closed it; finish waits for that (the run's process group is killed when
// the run ends) a bounded time.
type output struct {
	*keeper
	w    *os.File // the pipe's write end, for the process
	done chan struct{}

	copied    bool // the copy has ended; guarded by keeper.mu
	abandoned bool // finish gave up waiting: the copy closes the file; guarded by keeper.mu
}

// startOutput opens the pipe and starts copying from it into k.
func startOutput(k *keeper) (*output, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	o := &output{keeper: k, w: w, done: make(chan struct{})}
	go o.copy(r)
	return o, nil
}

func (o *output) copy(r *os.File) {
	defer close(o.done)
	defer r.Close()
	_, readErr := io.Copy(o.keeper, r) // the keeper takes everything: the process never blocks on a full pipe
	o.mu.Lock()
	defer o.mu.Unlock()
	if readErr != nil && o.err == nil {
		o.err = fmt.Errorf("read output: %w", readErr)
	}
	o.copied = true
	if o.abandoned && o.file != nil {
		_ = o.file.Close() // read-only use is over; nothing buffered to lose
	}
}

// started closes the parent's copy of the write end once the process has
// its own: the copy ends when the process (and whatever inherited the
// pipe) has exited.
func (o *output) started() { _ = o.w.Close() }

// finish waits up to wait for the copy to end and returns what was kept.
// A process that left the run's group and still holds the pipe is not
// waited for longer: the copy goes on, and the result is what had
// arrived.
func (o *output) finish(wait time.Duration) kept {
	_ = o.w.Close() // in case the process never started
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-o.done:
	case <-timer.C:
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.abandoned = !o.copied
	res := o.result()
	if o.copied && o.file != nil {
		if err := o.file.Close(); err != nil && res.err == nil {
			res.err = fmt.Errorf("close output file: %w", err)
		}
	}
	return res
}

// writtenByTheJob returns the tail and path of the output file when the
// job wrote it itself (one failed open for a silent run), or "", "".
func writtenByTheJob(path string, n int) (tail, _ string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	return readTail(f, n), path
}

// createOutput creates an output file, and its directory the first time.
func (x *Executor) createOutput(path string) (*os.File, error) {
	if err := x.ensureDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := openOutput(path)
	if errors.Is(err, fs.ErrNotExist) { // the directory went since it was cached
		x.dirs.Delete(filepath.Dir(path))
		if err = x.ensureDir(filepath.Dir(path)); err == nil {
			f, err = openOutput(path)
		}
	}
	return f, err
}

// openOutput opens the output file at path for appending, creating it,
// readable and writable by the executor only. A symbolic link there is
// refused, so the mode is never set on (nor output written to) a file
// elsewhere.
func openOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND|syscall.O_NOFOLLOW, outputFileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(outputFileMode); err != nil {
		_ = f.Close() // the chmod error is the one to report
		return nil, fmt.Errorf("output file %s: %w", path, err)
	}
	return f, nil
}

// ensureDir creates an output directory, only the executor's to read, once;
// later runs of the job find it in the cache and cost no file system call.
func (x *Executor) ensureDir(dir string) error {
	if _, ok := x.dirs.Load(dir); ok {
		return nil
	}
	if err := makeOutputDir(dir); err != nil {
		return err
	}
	x.dirs.Store(dir, struct{}{})
	return nil
}

// makeOutputDir creates dir and its parents if missing and gives dir
// mode 0700. Parents that existed keep their modes.
func makeOutputDir(dir string) error {
	if err := os.MkdirAll(dir, outputDirMode); err != nil {
		return err
	}
	if err := os.Chmod(dir, outputDirMode); err != nil {
		return fmt.Errorf("output directory %s: %w", dir, err)
	}
	return nil
}

// readTail returns the last n bytes of the output file f, as valid UTF-8.
func readTail(f *os.File, n int) string {
	info, err := f.Stat()
	if err != nil {
		return ""
	}
	start := max(info.Size()-int64(n), 0)
	buf, err := io.ReadAll(io.NewSectionReader(f, start, info.Size()-start))
	if err != nil {
		return ""
	}
	return strings.ToValidUTF8(string(buf), "\uFFFD")
}

// makeOutputRoot creates the executor's output directory, mode 0700, when
// it is missing; one that exists keeps the mode its owner gave it.
func (x *Executor) makeOutputRoot() error {
	if _, err := os.Stat(x.cfg.OutputDir); err == nil {
		return nil
	}
	return makeOutputDir(x.cfg.OutputDir)
}
