package executor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The lock's id names the file itself, not only host and path: another
// file at the same path (as in another container with the same host name
// and directory layout, whose flock does not exclude this one) has another
// id, so its registration is never taken for a dead predecessor's.
func TestNodeLock_IDNamesTheFileNotOnlyItsPath(t *testing.T) {
	dir := t.TempDir()
	first, err := lockNode(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.release(); err != nil {
		t.Fatal(err)
	}
	again, err := lockNode(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.id != first.id {
		t.Errorf("the same lock file has ids %q and %q", first.id, again.id)
	}
	if err := again.release(); err != nil {
		t.Fatal(err)
	}
	// Keep the old file alive under another name, so the new one cannot
	// reuse its inode.
	if err := os.Rename(filepath.Join(dir, lockFileName), filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	other, err := lockNode(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := other.release(); err != nil {
			t.Error(err)
		}
	}()
	if other.id == first.id {
		t.Errorf("another file at the same path has the same id %q", other.id)
	}
}

// TestNodeLock_TakenOnAFullDisk: on a full output disk the lock file can
// be created but not written, and the lock is taken all the same, its
// PID not written said in pidErr: an executor must be able to start
// there, as its runs still run (their output not kept). A second taker
// is refused, its error saying the holder's PID is unknown. The disk is a
// tmpfs of one page, which needs the right to mount.
func TestNodeLock_TakenOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	// Fill it: the write stops at the disk's size.
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 64<<10), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v; want no space left on device", err)
	}
	l, err := lockNode(dir)
	if err != nil {
		t.Fatalf("lock on a full disk: %v; want it taken", err)
	}
	defer func() {
		if err := l.release(); err != nil {
			t.Error(err)
		}
	}()
	if !errors.Is(l.pidErr, syscall.ENOSPC) {
		t.Errorf("pidErr %v; want no space left on device", l.pidErr)
	}
	if _, err := lockNode(dir); err == nil || !strings.Contains(err.Error(), "PID unknown") {
		t.Errorf("a second lock: %v; want refused, saying the holder's PID is unknown", err)
	}
}
