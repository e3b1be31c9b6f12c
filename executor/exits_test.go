package executor

import (
	"testing"
)

// An executor that opens the journal keeps what its predecessors wrote: if
// it dies before settling their runs, the next one still finds their ends.
func TestExitJournal_ReopeningKeepsEarlierEntries(t *testing.T) {
	dir := t.TempDir()
	first, err := openExitJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.add(exitEntry{Fire: "a@1", Attempt: 1, State: "succeeded"}); err != nil {
		t.Fatal(err)
	}
	if err := first.close(); err != nil {
		t.Fatal(err)
	}
	for range 3 { // three starts that die before settling anything
		j, err := openExitJournal(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.close(); err != nil {
			t.Fatal(err)
		}
	}
	exits, err := readExits(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := exits[exitKey("a@1", 1)]; !ok || e.State != "succeeded" {
		t.Errorf("after reopening: %v; want a@1 attempt 1 succeeded", exits)
	}
}
