package executor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aionsched/aion/scheduler/store"
)

// The exit journal keeps how each host run ended from the moment its
// process is waited for, so that if the executor dies before the result is
// recorded in etcd, its successor records the true result instead of
// "lost". One line per run is appended to a file the executor keeps open
// (a write, no file created per run); a kill of the executor loses nothing
// written, as the data is in the kernel. When the file passes
// exitJournalMax it becomes the previous generation (one is kept): an
// entry is needed only until its result is recorded, seconds later.
const (
	exitJournalName = ".aion-exits"
	exitJournalMax  = 4 << 20
)

// exitEntry is one line of the journal: the result of one attempt.
type exitEntry struct {
	Fire      string          `json:"fire"`
	Attempt   int             `json:"attempt"`
	State     store.FireState `json:"state"`
	Reason    string          `json:"reason,omitempty"`
	ExitCode  *int            `json:"exit_code,omitempty"`
	PID       int             `json:"pid,omitempty"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   time.Time       `json:"ended_at"`
}

func exitKey(fire string, attempt int) string { return fire + " " + strconv.Itoa(attempt) }

// exitJournal appends exit entries to <dir>/.aion-exits.
type exitJournal struct {
	path string
	mu   sync.Mutex
	file *os.File // guarded by mu
	size int64    // guarded by mu
}

// readExits reads both generations of the journal in dir, the newest entry
// of each attempt winning. A missing journal holds nothing; a torn last
// line (the executor died writing it) is skipped.
func readExits(dir string) (map[string]exitEntry, error) {
	entries := make(map[string]exitEntry)
	path := filepath.Join(dir, exitJournalName)
	for _, p := range []string{path + ".old", path} {
		if err := readExitFile(p, entries); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

func readExitFile(path string, into map[string]exitEntry) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read exit journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e exitEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Fire != "" {
			into[exitKey(e.Fire, e.Attempt)] = e
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read exit journal %s: %w", path, err)
	}
	return nil
}

// openExitJournal appends to the journal in dir. What a predecessor wrote
// stays (the newest entry of an attempt wins when it is read), so an
// executor that dies before it has settled its predecessor's runs leaves
// them to the next one; the file is rotated only by size.
func openExitJournal(dir string) (*exitJournal, error) {
	j := &exitJournal{path: filepath.Join(dir, exitJournalName)}
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open exit journal: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open exit journal: %w", err), f.Close())
	}
	j.file, j.size = f, info.Size()
	return j, nil
}

// rotate makes the current file the previous generation and opens a new
// one. Called with mu held.
func (j *exitJournal) rotate() error {
	if j.file != nil {
		if err := j.file.Close(); err != nil {
			return fmt.Errorf("close exit journal: %w", err)
		}
		j.file = nil
	}
	if err := os.Rename(j.path, j.path+".old"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate exit journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("open exit journal: %w", err)
	}
	j.file, j.size = f, 0
	return nil
}

// add appends the result of an attempt whose process has ended.
func (j *exitJournal) add(e exitEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode exit entry: %w", err)
	}
	line = append(line, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.size+int64(len(line)) > exitJournalMax {
		if err := j.rotate(); err != nil {
			return err
		}
	}
	n, err := j.file.Write(line)
	j.size += int64(n)
	if err != nil {
		return fmt.Errorf("write exit journal: %w", err)
	}
	return nil
}

func (j *exitJournal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.file.Close()
}
