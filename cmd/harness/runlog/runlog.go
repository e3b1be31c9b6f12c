// Package runlog is the record jobs keep of their own runs, outside Aion:
// a shell command that appends a start line before its work and an end
// line after it, the reading of those lines, and the questions tests and
// the reliability checker ask of them (which runs overlapped, which
// attempts started twice, how many ran at once).
//
// The lines are
//
//	start FIRE ATTEMPT NODE PID EPOCH
//	end FIRE ATTEMPT EPOCH
//
// with EPOCH as date +%s.%N prints it. A run that is killed logs no end.
package runlog

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Command wraps work in a shell command that appends a start line before
// and an end line after it to logPath.
func Command(logPath, work string) string {
	return fmt.Sprintf(`echo "start $AION_FIRE_ID $AION_ATTEMPT $AION_NODE $$ $(date +%%s.%%N)" >> %[1]s; %[2]s; echo "end $AION_FIRE_ID $AION_ATTEMPT $(date +%%s.%%N)" >> %[1]s`, logPath, work)
}

// CommandLoggingStop is Command whose run also logs its end when SIGTERM
// stops it (a kill, concurrency: replace, a timeout, an executor's stop):
// the signal goes to the run's whole process group, so the work dies at
// once and the shell, which runs the trap only then, logs the end line and
// exits 143 (128 + SIGTERM). The end is then measured by the run itself,
// as a normal end is, not at the next look of a Watcher. A SIGKILL (the
// fence, a kill's escalation) still logs nothing.
func CommandLoggingStop(logPath, work string) string {
	end := fmt.Sprintf(`echo "end $AION_FIRE_ID $AION_ATTEMPT $(date +%%s.%%N)" >> %s`, logPath)
	return fmt.Sprintf(`trap '%s; exit 143' TERM; %s`, end, Command(logPath, work))
}

// Run is one attempt as the job logged it.
type Run struct {
	Fire    string
	Attempt int
	Node    string
	PID     int
	Start   time.Time
	End     time.Time // zero when the run never logged its end
}

// Key names the attempt: "FIRE ATTEMPT".
func (r Run) Key() string { return r.Fire + " " + strconv.Itoa(r.Attempt) }

// Ended reports whether the run logged its end.
func (r Run) Ended() bool { return !r.End.IsZero() }

// Read reads a log written by Command, runs in the order their starts were
// logged. A missing file holds no runs. Lines of another shape are ignored;
// an end line belongs to the latest start of its attempt.
func Read(path string) ([]Run, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []Run
	open := make(map[string]int) // fire attempt → index of its latest start
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 6 && fields[0] == "start":
			attempt, _ := strconv.Atoi(fields[2])
			pid, _ := strconv.Atoi(fields[4])
			runs = append(runs, Run{Fire: fields[1], Attempt: attempt, Node: fields[3], PID: pid, Start: epoch(fields[5])})
			open[fields[1]+" "+fields[2]] = len(runs) - 1
		case len(fields) == 4 && fields[0] == "end":
			if i, ok := open[fields[1]+" "+fields[2]]; ok {
				runs[i].End = epoch(fields[3])
			}
		}
	}
	return runs, sc.Err()
}

func epoch(s string) time.Time {
	f, _ := strconv.ParseFloat(s, 64)
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// Epoch prints t as date +%s.%N does, for logs written by hand.
func Epoch(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// SortByStart orders runs by their start, keeping the logged order of
// equal starts.
func SortByStart(runs []Run) {
	slices.SortStableFunc(runs, func(a, b Run) int { return a.Start.Compare(b.Start) })
}

// OpenUntil returns a copy of runs in which every run that logged no end
// ends at at: for a test that knows such runs were still going then (or
// were killed no earlier).
func OpenUntil(runs []Run, at time.Time) []Run {
	out := slices.Clone(runs)
	for i := range out {
		if !out[i].Ended() {
			out[i].End = at
		}
	}
	return out
}

// Overlap reports whether a and b were alive at the same time. A run
// without an end line has no known interval and overlaps nothing.
func Overlap(a, b Run) bool {
	if !a.Ended() || !b.Ended() {
		return false
	}
	return a.Start.Before(b.End) && b.Start.Before(a.End)
}

// Overlaps lists every pair of runs alive at the same time, the earlier
// logged first in each pair.
func Overlaps(runs []Run) [][2]Run {
	var pairs [][2]Run
	for i := range runs {
		for j := i + 1; j < len(runs); j++ {
			if Overlap(runs[i], runs[j]) {
				pairs = append(pairs, [2]Run{runs[i], runs[j]})
			}
		}
	}
	return pairs
}

// Starts counts the starts of each attempt, by Key.
func Starts(runs []Run) map[string]int {
	n := make(map[string]int, len(runs))
	for _, r := range runs {
		n[r.Key()]++
	}
	return n
}

// Duplicates lists the attempts (by Key) that started more than once, in
// the order of their second start.
func Duplicates(runs []Run) []string {
	var dups []string
	seen := make(map[string]int, len(runs))
	for _, r := range runs {
		if seen[r.Key()]++; seen[r.Key()] == 2 {
			dups = append(dups, r.Key())
		}
	}
	return dups
}

// Keys lists the Key of each run, in order.
func Keys(runs []Run) []string {
	keys := make([]string, len(runs))
	for i, r := range runs {
		keys[i] = r.Key()
	}
	return keys
}

// Peak is the most runs alive at one time; runs without an end line are
// left out (see OpenUntil). A run that ends as another starts does not
// overlap it.
func Peak(runs []Run) int {
	type event struct {
		at    time.Time
		delta int
	}
	var events []event
	for _, r := range runs {
		if r.Ended() {
			events = append(events, event{r.Start, +1}, event{r.End, -1})
		}
	}
	slices.SortFunc(events, func(a, b event) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta // ends before starts at the same instant
	})
	peak, alive := 0, 0
	for _, e := range events {
		alive += e.delta
		peak = max(peak, alive)
	}
	return peak
}

// Lines reads a log line by line, whatever its shape: for jobs that log
// something else than Command does. A missing file has no lines.
func Lines(path string) ([]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// File is the path of a fresh log in the test's temporary directory.
func File(t testing.TB) string { return filepath.Join(t.TempDir(), "runs.log") }

// MustRead is Read that fails the test on an error.
func MustRead(t testing.TB, path string) []Run {
	t.Helper()
	runs, err := Read(path)
	if err != nil {
		t.Fatalf("read run log: %v", err)
	}
	return runs
}

// MustLines is Lines that fails the test on an error.
func MustLines(t testing.TB, path string) []string {
	t.Helper()
	lines, err := Lines(path)
	if err != nil {
		t.Fatalf("read run log: %v", err)
	}
	return lines
}

// Watcher notes when the process of each run in a log is seen gone, for
// runs killed before they could log their end (SIGKILL logs nothing): the
// first look that finds a run's shell gone (or a zombie) is an upper
// bound of its death, measured, not taken from Aion's records. Each look
// reads only what was appended to the log since the last, and checks only
// the runs still open, so a long soak's log costs no more than a short
// one's.
type Watcher struct {
	path string
	mu   sync.Mutex
	gone map[string]time.Time // by watchKey; guarded by mu
	// The log as read so far; guarded by mu.
	offset int64
	open   map[string]Run    // runs started and neither ended nor gone, by watchKey
	latest map[string]string // each attempt's latest start, by Key: its watchKey
}

// watchKey names one start of a run: its attempt and its shell's PID.
func watchKey(r Run) string { return r.Key() + " " + strconv.Itoa(r.PID) }

// Watch starts watching the runs logged at path, every interval, until
// the test ends.
func Watch(t testing.TB, path string, every time.Duration) *Watcher {
	w := &Watcher{path: path, gone: make(map[string]time.Time), open: make(map[string]Run), latest: make(map[string]string)}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				w.look()
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return w
}

func (w *Watcher) look() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.readNew()
	now := time.Now()
	for key, r := range w.open {
		if r.PID <= 0 {
			delete(w.open, key)
			continue
		}
		if !alive(r.PID) {
			w.gone[key] = now
			delete(w.open, key)
		}
	}
}

// readNew reads the complete lines appended to the log since the last
// look: a start opens a run, an end closes its attempt's latest start (as
// Read pairs them).
func (w *Watcher) readNew() {
	f, err := os.Open(w.path)
	if err != nil {
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.NewSectionReader(f, w.offset, 1<<62))
	if err != nil {
		return
	}
	complete := bytes.LastIndexByte(data, '\n') + 1
	w.offset += int64(complete)
	for _, line := range strings.Split(string(data[:complete]), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 6 && fields[0] == "start":
			attempt, _ := strconv.Atoi(fields[2])
			pid, _ := strconv.Atoi(fields[4])
			r := Run{Fire: fields[1], Attempt: attempt, Node: fields[3], PID: pid}
			w.open[watchKey(r)] = r
			w.latest[r.Key()] = watchKey(r)
		case len(fields) == 4 && fields[0] == "end":
			delete(w.open, w.latest[fields[1]+" "+fields[2]])
		}
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(stat), ") ")
	return ok && !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// EndAtDeath returns a copy of runs in which each run that logged no end
// ends when the watcher saw its process gone, if it did. Runs still
// unended are still running, or were never seen alive and gone.
func (w *Watcher) EndAtDeath(runs []Run) []Run {
	w.look()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(runs)
	for i := range out {
		if at, ok := w.gone[watchKey(out[i])]; ok && !out[i].Ended() {
			out[i].End = at
		}
	}
	return out
}
