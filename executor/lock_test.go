package executor

import (
	"os"
	"path/filepath"
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
