package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestClient_PruneDeletesOnlyTheJobsOfItsOwnApplySet is the restart case of
// `aion dev` as the CLI sees it: a directory is applied with prune, a job is
// applied by hand from elsewhere, and applying the directory again with
// prune leaves the hand-applied job alone. Only --prune-all deletes it, and
// --dry-run shows that first.
func TestClient_PruneDeletesOnlyTheJobsOfItsOwnApplySet(t *testing.T) {
	c := startCluster(t, false)
	dir, other := t.TempDir(), t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": clientJobs})
	writeJobs(t, other, map[string]string{"extra.yaml": "name: extra\nschedule: manual\ncommand: echo extra\n"})

	if code, _, stderr := c.aion(t, "apply", "-f", dir, "--prune"); code != 0 {
		t.Fatalf("apply the directory: exit %d\nstderr:\n%s", code, stderr)
	}
	if code, _, stderr := c.aion(t, "apply", "-f", filepath.Join(other, "extra.yaml")); code != 0 {
		t.Fatalf("apply a job by hand: exit %d\nstderr:\n%s", code, stderr)
	}
	code, stdout, stderr := c.aion(t, "apply", "-f", dir, "--prune")
	if code != 0 {
		t.Fatalf("apply the directory again: exit %d\nstderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "0 created, 0 updated, 4 unchanged, 0 deleted") {
		t.Errorf("apply the directory again printed:\n%s\nwant 4 unchanged, 0 deleted", stdout)
	}
	if _, ok := c.jobKeys(t)["extra"]; !ok {
		t.Fatal("the hand-applied job extra was deleted by the directory's prune")
	}

	// One unrelated file with prune deletes nothing of the directory's set.
	code, stdout, stderr = c.aion(t, "apply", "-f", filepath.Join(other, "extra.yaml"), "--prune")
	if code != 0 || !strings.Contains(stdout, "0 deleted") {
		t.Errorf("apply one file with --prune: exit %d\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if got := len(c.jobKeys(t)); got != 5 {
		t.Errorf("%d jobs stored after pruning the one-file set, want 5", got)
	}

	// --prune-all deletes jobs of other sets; --dry-run shows it first.
	before := c.jobKeys(t)
	code, stdout, stderr = c.aion(t, "apply", "-f", dir, "--prune-all", "--dry-run")
	if code != 0 || !slices.Contains(rows(stdout), "extra deleted (apply set "+filepath.Join(other, "extra.yaml")+")") {
		t.Errorf("apply --prune-all --dry-run: exit %d\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if after := c.jobKeys(t); len(after) != len(before) {
		t.Errorf("--dry-run changed the stored jobs: %v → %v", before, after)
	}
	if code, _, stderr := c.aion(t, "apply", "-f", dir, "--prune-all"); code != 0 {
		t.Fatalf("apply --prune-all: exit %d\nstderr:\n%s", code, stderr)
	}
	if _, ok := c.jobKeys(t)["extra"]; ok {
		t.Error("--prune-all left extra stored")
	}
}

// TestClient_AJobKeepsItsApplySetUnlessForced: a job applied from one
// place stays in that set when applied from another path, and naming
// another set with --set is refused unless --force-conflicts moves it.
func TestClient_AJobKeepsItsApplySetUnlessForced(t *testing.T) {
	c := startCluster(t, false)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"a/greet.yaml": "name: greet\nschedule: manual\ncommand: echo a\n"})
	writeJobs(t, dir, map[string]string{"b/greet.yaml": "name: greet\nschedule: manual\ncommand: echo b\n"})
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if code, _, stderr := c.aion(t, "apply", a); code != 0 {
		t.Fatalf("apply %s: exit %d\nstderr:\n%s", a, code, stderr)
	}
	code, stdout, stderr := c.aion(t, "apply", b)
	if code != 0 || !slices.Contains(rows(stdout), "greet updated (apply set "+a+")") {
		t.Errorf("apply %s, a job of set %s: exit %d\n%s\nstderr:\n%s\nwant greet updated, staying in set %s", b, a, code, stdout, stderr, a)
	}
	before := c.jobKeys(t)
	code, _, stderr = c.aion(t, "apply", b, "--set", "team-b")
	if code == 0 || !strings.Contains(stderr, `greet (apply set "`+a+`")`) || !strings.Contains(stderr, "--force-conflicts") {
		t.Errorf("apply --set team-b over a job of set %s: exit %d, stderr:\n%s\nwant a refusal naming the set and --force-conflicts", a, code, stderr)
	}
	if after := c.jobKeys(t); after["greet"] != before["greet"] {
		t.Error("the refused apply changed greet")
	}
	if code, stdout, stderr := c.aion(t, "apply", b, "--set", "team-b", "--force-conflicts"); code != 0 || !strings.Contains(stdout, "1 updated") {
		t.Errorf("apply --force-conflicts: exit %d\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// Now greet is of set team-b: pruning set a (greet gone from it) leaves it.
	writeJobs(t, a, map[string]string{"greet.yaml": "name: other\nschedule: manual\ncommand: echo other\n"})
	code, stdout, stderr = c.aion(t, "apply", a, "--prune")
	if code != 0 || !strings.Contains(stdout, "1 stored job of other apply sets not pruned (--prune-all deletes them): greet") {
		t.Fatalf("apply %s --prune: exit %d\n%s\nstderr:\n%s", a, code, stdout, stderr)
	}
	if _, ok := c.jobKeys(t)["greet"]; !ok {
		t.Error("greet, moved to set team-b, was pruned by set a")
	}
}

// TestClient_ApplyTakesPathsAndAChildAlone: the path may be given like
// `aion validate` takes it, and a child job applies alone when its parent
// is stored; a missing parent is still refused.
func TestClient_ApplyTakesPathsAndAChildAlone(t *testing.T) {
	c := startCluster(t, false)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{
		"parent.yaml": "name: nightly\nschedule: \"30 2 * * *\"\ncommand: echo nightly\n",
		"child.yaml":  "name: child\nparents: [nightly]\ncommand: echo child\n",
		"orphan.yaml": "name: orphan\nparents: [nowhere]\ncommand: echo orphan\n",
	})
	if code, _, stderr := c.aion(t, "apply", filepath.Join(dir, "parent.yaml")); code != 0 {
		t.Fatalf("apply PATH: exit %d\nstderr:\n%s", code, stderr)
	}
	code, stdout, stderr := c.aion(t, "apply", filepath.Join(dir, "child.yaml"))
	if code != 0 || !slices.Contains(rows(stdout), "child created") {
		t.Errorf("apply a child whose parent is stored: exit %d\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	orphan := filepath.Join(dir, "orphan.yaml")
	code, _, stderr = c.aion(t, "apply", orphan)
	if code == 0 || !strings.Contains(stderr, orphan+`:2:11: parents[0]: unknown job "nowhere"`) {
		t.Errorf("apply a child whose parent is nowhere: exit %d, stderr:\n%s", code, stderr)
	}
	if _, ok := c.jobKeys(t)["orphan"]; ok {
		t.Error("orphan was stored")
	}
}
