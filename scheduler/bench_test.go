package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// BenchmarkPlanDue measures planning: each iteration moves the clock one
// second, so each of the 1,000 every-second jobs is due once, and plans
// them all (fenced transactions on a real etcd, dispatches on NATS).
func BenchmarkPlanDue(b *testing.B) {
	l, clock := testTerm(b, 1000, store.Node{ID: "x1", Slots: 1 << 30})
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		clock.Add(int64(time.Second))
		if err := l.planner.planDue(ctx, l.now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "fires/s")
}

// BenchmarkQueue measures the due-time heap: take the job due first and
// queue it at a later time, among 100,000 jobs.
func BenchmarkQueue(b *testing.B) {
	var q dueHeap
	base := time.Now()
	for i := range 100_000 {
		q.set(&jobEntry{index: -1, name: fmt.Sprintf("j%06d", i)}, base.Add(time.Duration(rand.IntN(3600))*time.Second))
	}
	b.ResetTimer()
	for b.Loop() {
		e := q.peek()
		q.set(e, e.next.Add(time.Duration(1+rand.IntN(3600))*time.Second))
	}
}

// BenchmarkPlacementChoose measures choosing a node among 100, half of
// which match the job's constraint.
func BenchmarkPlacementChoose(b *testing.B) {
	p := newPlacement()
	for i := range 100 {
		zone := "eu"
		if i%2 == 1 {
			zone = "us"
		}
		p.register(store.Node{ID: fmt.Sprintf("x%03d", i), Slots: 1 << 20, Labels: map[string]string{"zone": zone}})
	}
	job := &jobPolicy{}
	sels, err := jobspec.ParseSelectors([]string{"zone=eu"})
	if err != nil {
		b.Fatal(err)
	}
	e := &jobEntry{policy: job, sels: sels}
	for b.Loop() {
		node, _ := p.choose(e)
		p.reserve(node)
	}
}

// BenchmarkLoadSnapshot measures what a new leader does before it plans:
// read and decode 20,000 jobs with their states, in pages, and queue them.
func BenchmarkLoadSnapshot(b *testing.B) {
	l, _ := testTerm(b, 20_000)
	ctx := context.Background()
	for b.Loop() {
		fresh := newTerm(l.s, l.s.newJobTable(), l.fence.key, l.fence.rev)
		if _, err := fresh.load(ctx, 0); err != nil {
			b.Fatal(err)
		}
		if fresh.jobs.len() != 20_000 {
			b.Fatalf("%d jobs loaded", fresh.jobs.len())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/20_000, "µs/job")
}

// BenchmarkLeaderHeapPerJob measures the live heap a leader holds per job:
// 20,000 jobs firing once a year (most of a large installation) in four
// time zones, loaded as after an election, with 1,440 distinct schedules
// (a time of day each: jobs share schedules, as crontabs do) and with
// 20,000 (no two jobs alike: the worst case). It reports bytes of live
// heap per job, after a collection, not counting what etcd and the
// clients hold.
func BenchmarkLeaderHeapPerJob(b *testing.B) {
	const n = 20_000
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}
	for _, distinct := range []int{1440, n} {
		b.Run(fmt.Sprintf("schedules=%d", distinct), func(b *testing.B) {
			l, _ := testTermWith(b, n, func(i int) string {
				k := i % distinct
				return fmt.Sprintf("schedule: \"%d %d %d 1 *\"\n    timezone: %s\n    concurrency: forbid", k%60, k/60%24, 1+k/1440%28, zones[i%4])
			})
			var perJob float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				fresh := newTerm(l.s, l.s.newJobTable(), l.fence.key, l.fence.rev)
				if _, err := fresh.load(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				if fresh.jobs.len() != n {
					b.Fatalf("%d jobs loaded", fresh.jobs.len())
				}
				perJob = float64(after.HeapAlloc-before.HeapAlloc) / n
				runtime.KeepAlive(fresh)
			}
			b.ReportMetric(perJob, "heap-B/job")
		})
	}
}
