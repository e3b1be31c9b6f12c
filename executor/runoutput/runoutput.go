// Package runoutput keeps one run's output: its file (0600, in a 0700
// directory, created when the first byte arrives, capped at a limit) and
// its last bytes in memory, so the record has the real end of the output
// even when the file was cut short or could not be written. A run's
// supervisor keeps a host run's output with it; the executor a
// container's.
package runoutput

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Output files and their directories are the executor's alone: a run's
// output may hold secrets. The modes are set after creation, so the
// umask cannot widen or narrow them.
const (
	FileMode = 0o600
	DirMode  = 0o700
)

// Keeper keeps a run's output: in its file, created when the first byte
// arrives and capped at Limit bytes, and its last TailBytes in memory.
// Most cron jobs are silent, and creating a file cost about 0.23 ms of CPU
// each on the ext4 disks measured: a fifth of all CPU at 1,000 runs a
// second (BENCHMARKS.md).
//
// Writes never fail: a run must not block or die because its output
// could not be kept; the first error is kept for the record instead.
type Keeper struct {
	Path      string
	Limit     int64 // 0: no limit
	TailBytes int
	// Create opens the file at the first byte (OpenFile unless set).
	Create func(string) (*os.File, error)

	mu        sync.Mutex
	file      *os.File // nil until output arrives
	err       error    // the first error creating or writing the file
	written   int64    // bytes written to the file
	truncated bool     // output came past the limit
	tail      []byte
}

// Write keeps p: its end in the tail, and in the file what fits under the
// limit. It always reports p written.
func (k *Keeper) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keepTail(p)
	if k.err != nil {
		return len(p), nil
	}
	if k.file == nil {
		create := k.Create
		if create == nil {
			create = OpenFile
		}
		f, err := create(k.Path)
		if err != nil {
			k.err = fmt.Errorf("create output file: %w", err)
			return len(p), nil
		}
		k.file = f
	}
	n := int64(len(p))
	if k.Limit > 0 && k.written+n > k.Limit {
		n, k.truncated = k.Limit-k.written, true
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

// keepTail appends p to the tail and trims it to TailBytes, copying only
// when the tail has grown to twice that.
func (k *Keeper) keepTail(p []byte) {
	if k.TailBytes <= 0 {
		return
	}
	if len(p) >= k.TailBytes {
		k.tail = append(k.tail[:0], p[len(p)-k.TailBytes:]...)
		return
	}
	k.tail = append(k.tail, p...)
	if len(k.tail) >= 2*k.TailBytes {
		k.tail = append(k.tail[:0], k.tail[len(k.tail)-k.TailBytes:]...)
	}
}

// Kept is what a run's record says of its output.
type Kept struct {
	Tail string `json:"tail,omitempty"`
	Path string `json:"path,omitempty"` // "" when no file holds any
	// Err says why the output was not kept, or not all of it.
	Err string `json:"error,omitempty"`
	// Limit is set when the output was truncated at it.
	Limit int64 `json:"limit,omitempty"`
}

// result is what was kept so far; k.mu must be held. When nothing came
// through it, the job may still have written to its output file itself.
func (k *Keeper) result() Kept {
	memTail := func() string { return strings.ToValidUTF8(string(k.tail[max(len(k.tail)-k.TailBytes, 0):]), "\uFFFD") }
	var res Kept
	if k.err != nil {
		res.Err = k.err.Error()
	}
	if k.truncated {
		res.Limit = k.Limit
	}
	switch {
	case k.file == nil && k.err == nil:
		res.Tail, res.Path = TailOf(k.Path, k.TailBytes)
	case k.file == nil: // the file could not be created
		res.Tail = memTail()
	case k.err != nil || k.truncated:
		res.Tail, res.Path = memTail(), k.Path
	default: // the whole output is in the file, with any the job wrote there itself
		res.Tail, res.Path = readTail(k.file, k.TailBytes), k.Path
	}
	return res
}

// errClosed stops writes that come after Close (from a copy that
// outlived its run) from creating the file again.
var errClosed = errors.New("output closed")

// Close ends the output of a run that wrote to k directly (a container
// run): it returns what was kept and closes the file.
func (k *Keeper) Close() Kept {
	k.mu.Lock()
	defer k.mu.Unlock()
	res := k.result()
	if k.file != nil {
		if err := k.file.Close(); err != nil && res.Err == "" {
			res.Err = fmt.Sprintf("close output file: %v", err)
		}
	}
	k.file, k.err = nil, errClosed
	return res
}

// Pipe collects a process's stdout and stderr through a pipe into a
// Keeper. From the first byte on, everything goes to the file as it
// comes, so `aion logs` follows a running job.
//
// The copy runs in its own goroutine until every holder of the pipe has
// closed it; Finish waits for that (the run's process group is killed
// when the run ends) a bounded time.
type Pipe struct {
	k *Keeper
	// W is the pipe's write end, for the process.
	W    *os.File
	done chan struct{}

	copied    bool // the copy has ended; guarded by k.mu
	abandoned bool // Finish gave up waiting: the copy closes the file; guarded by k.mu
}

// StartPipe opens the pipe and starts copying from it into k.
func StartPipe(k *Keeper) (*Pipe, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p := &Pipe{k: k, W: w, done: make(chan struct{})}
	go p.copy(r)
	return p, nil
}

func (p *Pipe) copy(r *os.File) {
	defer close(p.done)
	defer r.Close()
	_, readErr := io.Copy(p.k, r) // the keeper takes everything: the process never blocks on a full pipe
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	if readErr != nil && p.k.err == nil {
		p.k.err = fmt.Errorf("read output: %w", readErr)
	}
	p.copied = true
	if p.abandoned && p.k.file != nil {
		_ = p.k.file.Close() // read-only use is over; nothing buffered to lose
	}
}

// Started closes the parent's copy of the write end once the process has
// its own: the copy ends when the process (and whatever inherited the
// pipe) has exited.
func (p *Pipe) Started() { _ = p.W.Close() }

// Finish waits up to wait for the copy to end and returns what was kept.
// A process that left the run's group and still holds the pipe is not
// waited for longer: the copy goes on, and the result is what had
// arrived.
func (p *Pipe) Finish(wait time.Duration) Kept {
	_ = p.W.Close() // in case the process never started
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
	}
	p.k.mu.Lock()
	defer p.k.mu.Unlock()
	p.abandoned = !p.copied
	res := p.k.result()
	if p.copied && p.k.file != nil {
		if err := p.k.file.Close(); err != nil && res.Err == "" {
			res.Err = fmt.Sprintf("close output file: %v", err)
		}
	}
	return res
}

// TailOf returns the last n bytes and the path of the output file at
// path, if there is one (a silent run may still have written its output
// file itself), or "", "": one failed open for a silent run.
func TailOf(path string, n int) (tail, _ string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	return readTail(f, n), path
}

// OpenFile opens the output file at path for appending, creating it,
// readable and writable by its owner only. A symbolic link there is
// refused, so the mode is never set on (nor output written to) a file
// elsewhere.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND|syscall.O_NOFOLLOW, FileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(FileMode); err != nil {
		_ = f.Close() // the chmod error is the one to report
		return nil, fmt.Errorf("output file %s: %w", path, err)
	}
	return f, nil
}

// MakeDir creates dir and its parents if missing and gives dir mode
// 0700. Parents that existed keep their modes.
func MakeDir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return err
	}
	if err := os.Chmod(dir, DirMode); err != nil {
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
