package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A jobs directory with no job files is an empty set; one that cannot be
// read is not (applied as empty, it would prune every job it applied).
func TestEmptyDir_OnlyADirectoryWithoutJobFilesIsEmpty(t *testing.T) {
	empty := t.TempDir()
	if !emptyDir(empty) {
		t.Errorf("a directory with no job files is not taken as empty")
	}
	full := t.TempDir()
	writeJobs(t, full, map[string]string{"a.yaml": "name: a\nschedule: manual\ncommand: x\n"})
	if emptyDir(full) {
		t.Errorf("a directory with a job file is taken as empty")
	}
	if emptyDir(filepath.Join(empty, "missing")) {
		t.Errorf("a missing directory is taken as empty")
	}
	if os.Geteuid() == 0 {
		t.Skip("running as root, which reads any directory: the unreadable case needs another user")
	}
	locked := filepath.Join(t.TempDir(), "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	writeJobs(t, locked, map[string]string{"a.yaml": "name: a\nschedule: manual\ncommand: x\n"})
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chmod(locked, 0o700); err != nil {
			t.Error(err)
		}
	})
	if emptyDir(locked) {
		t.Errorf("an unreadable directory is taken as empty")
	}
}
