package executor

import (
	"os/exec"
	"sync"
	"testing"
	"time"
)

// BenchmarkStart100ProcessesAtOnce measures the floor under any run's
// lateness on this machine: starting 100 /bin/true processes at the same
// instant, with nothing of Aion involved. It reports how long after the
// instant the last one started.
func BenchmarkStart100ProcessesAtOnce(b *testing.B) {
	var last time.Duration
	for b.Loop() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		latest := time.Duration(0)
		t0 := time.Now()
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command("/bin/true")
				if err := cmd.Start(); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				latest = max(latest, d)
				mu.Unlock()
				_ = cmd.Wait()
			}()
		}
		wg.Wait()
		last += latest
	}
	b.ReportMetric(float64(last.Microseconds())/1000/float64(b.N), "ms-to-last-start")
}
