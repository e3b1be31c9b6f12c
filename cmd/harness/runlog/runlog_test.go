package runlog

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCommand_LogsStartAndEndThatReadParses runs the command through a real
// shell with the variables an executor sets, twice, once failing half-way.
func TestCommand_LogsStartAndEndThatReadParses(t *testing.T) {
	log := File(t)
	run := func(fire, attempt, work string) {
		cmd := exec.Command("/bin/sh", "-c", Command(log, work))
		cmd.Env = append(os.Environ(), "AION_FIRE_ID="+fire, "AION_ATTEMPT="+attempt, "AION_NODE=x1")
		_ = cmd.Run()
	}
	before := time.Now()
	run("tick@1", "1", "sleep 0.05")
	run("tick@2", "2", "exit 3") // ends the shell: no end line, as for a killed run
	after := time.Now()

	runs := MustRead(t, log)
	if got := Keys(runs); !slices.Equal(got, []string{"tick@1 1", "tick@2 2"}) {
		t.Fatalf("runs %q, want tick@1 1 and tick@2 2", got)
	}
	first, second := runs[0], runs[1]
	if first.Node != "x1" || first.PID == 0 || !first.Ended() || first.End.Sub(first.Start) < 40*time.Millisecond {
		t.Errorf("first run %+v: want node x1, a PID and an end at least 50 ms after its start", first)
	}
	if first.Start.Before(before.Add(-time.Second)) || first.End.After(after.Add(time.Second)) {
		t.Errorf("first run from %s to %s, outside the test's %s .. %s", first.Start, first.End, before, after)
	}
	if second.Ended() {
		t.Errorf("second run %+v logged an end, though its work exited the shell", second)
	}
	if lines := MustLines(t, log); len(lines) != 3 {
		t.Errorf("%d lines, want 3 (two starts, one end): %q", len(lines), lines)
	}
}

func TestRead_MissingFileHasNoRuns(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.log")
	if runs, err := Read(missing); err != nil || runs != nil {
		t.Errorf("Read of a missing file: %v, %v; want nothing", runs, err)
	}
	if lines, err := Lines(missing); err != nil || lines != nil {
		t.Errorf("Lines of a missing file: %q, %v; want nothing", lines, err)
	}
}

// TestOverlapsDuplicatesAndPeak: one of each fault, by hand.
func TestOverlapsDuplicatesAndPeak(t *testing.T) {
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) string { return Epoch(base.Add(time.Duration(s * float64(time.Second)))) }
	log := File(t)
	text := strings.Join([]string{
		"start a 1 x1 100 " + at(1),
		"end a 1 " + at(2.5), // a: 1 .. 2.5
		"start b 1 x1 101 " + at(2),
		"end b 1 " + at(3), // b: 2 .. 3, overlaps a
		"start c 1 x2 102 " + at(3),
		"end c 1 " + at(4),          // c: 3 .. 4, touches b, overlaps nothing
		"start c 1 x2 103 " + at(5), // c again: a duplicate, never ended
		"start d 2 x2 104 " + at(4.5),
		"end d 2 " + at(6), // d: 4.5 .. 6
		"garbage line",
	}, "\n") + "\n"
	if err := os.WriteFile(log, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := MustRead(t, log)
	if len(runs) != 5 {
		t.Fatalf("%d runs, want 5", len(runs))
	}
	pairs := Overlaps(runs)
	if len(pairs) != 1 || pairs[0][0].Fire != "a" || pairs[0][1].Fire != "b" {
		t.Errorf("overlaps %v, want only a with b", pairs)
	}
	if got := Duplicates(runs); !slices.Equal(got, []string{"c 1"}) {
		t.Errorf("duplicates %q, want c 1", got)
	}
	if n := Starts(runs); n["c 1"] != 2 || n["a 1"] != 1 || n["d 2"] != 1 {
		t.Errorf("starts %v, want c 1 twice, a 1 and d 2 once", n)
	}
	if p := Peak(runs); p != 2 {
		t.Errorf("peak %d, want 2 (a and b)", p)
	}
	// The second c never ended: counted as going on until 7 s it overlaps d.
	open := OpenUntil(runs, base.Add(7*time.Second))
	if runs[3].Ended() {
		t.Error("OpenUntil changed its argument")
	}
	if pairs := Overlaps(open); len(pairs) != 2 || pairs[1][0].PID != 103 || pairs[1][1].Fire != "d" {
		t.Errorf("overlaps with open runs going on %v, want a with b and the second c with d", pairs)
	}
	SortByStart(open)
	var order []string
	for _, r := range open {
		order = append(order, r.Fire)
	}
	if got := strings.Join(order, ","); got != "a,b,c,d,c" {
		t.Errorf("sorted by start: %s, want a,b,c,d,c", got)
	}
}

// TestCommandLoggingStop_LogsTheEndOfARunStoppedBySIGTERM stops a run's
// process group with SIGTERM, as a kill does: the work dies at once, the
// run logs its end after that, and the shell exits 143. A run not stopped
// logs its end as Command's does.
func TestCommandLoggingStop_LogsTheEndOfARunStoppedBySIGTERM(t *testing.T) {
	log := File(t)
	start := func(fire, work string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", CommandLoggingStop(log, work))
		cmd.Env = append(os.Environ(), "AION_FIRE_ID="+fire, "AION_ATTEMPT=1", "AION_NODE=x1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	if err := start("quick@1", "true").Wait(); err != nil {
		t.Fatalf("a run not stopped: %v", err)
	}
	cmd := start("long@1", "sleep 30")
	for len(MustRead(t, log)) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	stopped := time.Now()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 143 {
		t.Errorf("stopped run: %v, want exit status 143", err)
	}
	runs := MustRead(t, log)
	if len(runs) != 2 || !runs[0].Ended() || !runs[1].Ended() {
		t.Fatalf("runs %+v, want both ended", runs)
	}
	if long := runs[1]; long.End.Before(stopped) || long.End.Sub(stopped) > 5*time.Second {
		t.Errorf("the stopped run ended at %s, want soon after the SIGTERM at %s", long.End, stopped)
	}
}

// TestWatcher_SeesKilledRunsGone: a run killed before its end line ends,
// for EndAtDeath, when the watcher saw its shell gone; a run that logged
// its end and a run still going keep theirs (none), and lines appended
// after a look are read at the next.
func TestWatcher_SeesKilledRunsGone(t *testing.T) {
	log := File(t)
	w := Watch(t, log, 10*time.Millisecond)
	start := func(fire, work string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", "-c", Command(log, work))
		cmd.Env = append(os.Environ(), "AION_FIRE_ID="+fire, "AION_ATTEMPT=1", "AION_NODE=x1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	if err := start("quick@1", "true").Wait(); err != nil {
		t.Fatal(err)
	}
	killed, going := start("killed@1", "sleep 30"), start("going@1", "sleep 30")
	t.Cleanup(func() { _ = syscall.Kill(-going.Process.Pid, syscall.SIGKILL); _ = going.Wait() })
	for len(MustRead(t, log)) < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a look or more with both alive
	_ = syscall.Kill(-killed.Process.Pid, syscall.SIGKILL)
	_ = killed.Wait()
	dead := time.Now()
	time.Sleep(50 * time.Millisecond)
	runs := w.EndAtDeath(MustRead(t, log))
	byFire := make(map[string]Run)
	for _, r := range runs {
		byFire[r.Fire] = r
	}
	if r := byFire["killed@1"]; !r.Ended() || r.End.Before(dead) || r.End.After(dead.Add(40*time.Millisecond)) {
		t.Errorf("killed run %+v, want an end within a look after %s", r, dead)
	}
	if r := byFire["going@1"]; r.Ended() {
		t.Errorf("running run %+v has an end", r)
	}
	if r := byFire["quick@1"]; !r.Ended() || r.End.After(dead) {
		t.Errorf("quick run %+v, want its own end line", r)
	}
}
