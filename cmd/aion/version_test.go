package main

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// aion version reports the Go version and platform the binary was built
// with, in both formats.
func TestVersion_ReportsBuildInfo(t *testing.T) {
	t.Chdir(t.TempDir())
	code, stdout, stderr := runAion(t, "version", "-o", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("version -o json: exit %d, stderr %q", code, stderr)
	}
	out := decodeOutput[versionOutput](t, stdout)
	platform := runtime.GOOS + "/" + runtime.GOARCH
	if out.Version == "" || out.Go != runtime.Version() || out.Platform != platform {
		t.Errorf("version -o json = %+v; want a version, go %s and platform %s", out, runtime.Version(), platform)
	}
	code, stdout, stderr = runAion(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("version: exit %d, stderr %q", code, stderr)
	}
	if first := lines(stdout)[0]; first != "aion "+out.Version {
		t.Errorf("first line %q, want %q", first, "aion "+out.Version)
	}
	if want := "go " + runtime.Version() + " " + platform; !strings.Contains(squash(stdout), want) {
		t.Errorf("stdout %q lacks %q", stdout, want)
	}
}

// A binary built from a git checkout names its commit, with +dirty once
// the checkout has uncommitted changes, as Go stamps them. The test builds
// a copy of this source tree committed to a fresh repository: Go stamps no
// VCS information in a git worktree (.git is a file there) or with
// -buildvcs=false.
func TestVersion_BinaryNamesItsCommit(t *testing.T) {
	clustertest.SkipShort(t, "builds aion twice")
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	repo := copySourceTree(t, "../..")
	git(t, repo, "init", "--quiet")
	git(t, repo, "add", "-A")
	git(t, repo, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "--quiet", "-m", "test")
	head := git(t, repo, "rev-parse", "HEAD")

	if got := builtVersion(t, repo); got.Commit != head || got.Module != "github.com/aionsched/aion" || got.Go != runtime.Version() || got.CommitTime == "" {
		t.Errorf("clean checkout: %+v; want commit %s, its time, module github.com/aionsched/aion and go %s", got, head, runtime.Version())
	}
	if err := os.WriteFile(filepath.Join(repo, "uncommitted.txt"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := builtVersion(t, repo); got.Commit != head+"+dirty" {
		t.Errorf("checkout with changes: commit %q, want %q", got.Commit, head+"+dirty")
	}
}

// copySourceTree copies the files git sees in root (tracked and untracked,
// not ignored) to a new directory and returns it.
func copySourceTree(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range strings.Split(git(t, root, "ls-files", "--cached", "--others", "--exclude-standard"), "\n") {
		data, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// git runs git in dir and returns its trimmed output.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// builtVersion builds aion in dir with VCS stamping and returns what its
// version -o json prints.
func builtVersion(t *testing.T, dir string) versionOutput {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "aion")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/aion")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stdout, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("aion version -o json: %v", err)
	}
	return decodeOutput[versionOutput](t, string(stdout))
}
