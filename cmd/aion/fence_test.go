package main

import (
	"strings"
	"testing"
)

// A fence the lease cannot cover is a usage error naming the key, before
// the executor connects to anything.
func TestExecutor_FenceNotUnderTheLeaseIsAUsageError(t *testing.T) {
	for _, fence := range []string{"5s", "10s", "50ms"} {
		code, _, stderr := runAion(t, "executor", "--fence", fence, "--output-dir", t.TempDir(), "--etcd", "http://127.0.0.1:1", "--nats", "nats://127.0.0.1:1")
		if code != exitUsage || !strings.Contains(stderr, "executor.fence (--fence): "+fence) {
			t.Errorf("--fence %s: exit %d, %q; want %d naming executor.fence (--fence)", fence, code, stderr, exitUsage)
		}
	}
	if code, _, stderr := runAion(t, "executor", "--fence", "2s", "--help"); code != 0 {
		t.Errorf("--fence 2s --help: exit %d: %s", code, stderr)
	}
}
