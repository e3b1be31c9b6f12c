package executor

import (
	"testing"
	"time"
)

// The lease's certainty is counted on the boot clock, which goes on while
// the machine is suspended: after a suspend longer than the lease, the
// executor no longer counts its lease alive (and so stops beating its
// supervisor), whatever the monotonic clock, which stood still, says.
func TestLeaseAlive_CountsTimeSuspended(t *testing.T) {
	boot := 100 * time.Second
	x := &Executor{bootClock: func() time.Duration { return boot }}
	if x.leaseAlive() {
		t.Fatal("alive before any lease was granted")
	}
	x.leaseUntil.Store(int64(boot + 5*time.Second)) // a renewal sent now, TTL 5 s
	if !x.leaseAlive() {
		t.Fatal("not alive just after a renewal")
	}
	boot += 6 * time.Second // suspended for 6 s: the monotonic clock did not move
	if x.leaseAlive() {
		t.Error("alive after a suspend longer than the lease's TTL")
	}
}
