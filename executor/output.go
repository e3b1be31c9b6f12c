package executor

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// output collects a host run's stdout and stderr through a pipe and creates
// the run's output file only when the first byte arrives. Most cron jobs
// are silent, and creating a file cost about 0.23 ms of CPU each on the
// ext4 disks measured: a fifth of all CPU at 1,000 runs a second
// (BENCHMARKS.md). From the first byte on, everything goes to the file as
// it comes, so `aion logs` follows a running job as before.
//
// The copy runs in its own goroutine until every holder of the pipe has
// closed it; finish waits for that (the run's process group is killed when
// the run ends) a bounded time.
type output struct {
	path string
	w    *os.File // the pipe's write end, for the process
	done chan struct{}

	mu        sync.Mutex
	file      *os.File // nil until output arrives
	err       error    // the first error creating or writing the file
	copied    bool     // the copy has ended
	abandoned bool     // finish gave up waiting: the copy closes the file
}

// startOutput opens the pipe and starts copying from it into the file at
// path (created on the first byte, in a directory made by ensureDir).
func (x *Executor) startOutput(path string) (*output, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	o := &output{path: path, w: w, done: make(chan struct{})}
	go o.copy(r, x.createOutput)
	return o, nil
}

func (o *output) copy(r *os.File, create func(string) (*os.File, error)) {
	defer close(o.done)
	defer r.Close()
	var first [4 << 10]byte
	n, _ := r.Read(first[:])
	if n > 0 {
		f, err := create(o.path)
		o.mu.Lock()
		o.file, o.err = f, err
		o.mu.Unlock()
		if err == nil {
			_, err = f.Write(first[:n])
			if err == nil {
				_, err = io.Copy(f, r)
			}
			if err != nil {
				o.mu.Lock()
				o.err = err
				o.mu.Unlock()
			}
		}
	}
	_, _ = io.Copy(io.Discard, r) // after a file error: keep the process from blocking on a full pipe
	o.mu.Lock()
	defer o.mu.Unlock()
	o.copied = true
	if o.abandoned && o.file != nil {
		_ = o.file.Close()
	}
}

// started closes the parent's copy of the write end once the process has
// its own: the copy ends when the process (and whatever inherited the
// pipe) has exited.
func (o *output) started() { _ = o.w.Close() }

// finish waits up to wait for the copy to end and returns the last
// tailBytes of the output, the output file's path ("" when the run wrote
// nothing), and any error writing it. A process that left the run's group
// and still holds the pipe is not waited for longer: the copy goes on,
// and the tail is what had arrived.
func (o *output) finish(tailBytes int, wait time.Duration) (tail, path string, err error) {
	_ = o.w.Close() // in case the process never started
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-o.done:
	case <-timer.C:
	}
	o.mu.Lock()
	f, copied := o.file, o.copied
	err = o.err
	o.abandoned = !copied
	o.mu.Unlock()
	if f == nil {
		// Nothing came through the pipe; the job may still have written
		// to $AION_OUTPUT itself.
		tail, path = o.writtenByTheJob(tailBytes)
		return tail, path, err
	}
	tail = readTail(f, tailBytes)
	if copied {
		_ = f.Close()
	}
	return tail, o.path, err
}

// writtenByTheJob returns the tail and path of the output file when the
// job wrote it itself (one failed open for a silent run), or "", "".
func (o *output) writtenByTheJob(n int) (tail, path string) {
	f, err := os.Open(o.path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	return readTail(f, n), o.path
}

// createOutput creates an output file, and its directory the first time.
func (x *Executor) createOutput(path string) (*os.File, error) {
	if err := x.ensureDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	const flags = os.O_CREATE | os.O_RDWR | os.O_APPEND
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrNotExist) { // the directory went since it was cached
		x.dirs.Delete(filepath.Dir(path))
		if err = x.ensureDir(filepath.Dir(path)); err == nil {
			f, err = os.OpenFile(path, flags, 0o644)
		}
	}
	return f, err
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
