package reliability

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"
)

// fault is one kind of fault the soak injects: inject does it, waits for
// as long as it lasts, heals it, and says what it did. When inject
// returns, every process runs again, linked to etcd, and every etcd member
// and NATS serve. To add a kind (a network namespace partition, say),
// append it to soakFaults.
type fault struct {
	name   string
	inject func(s *soak, rng *rand.Rand) string
}

// soakFaults is the menu the soak draws each fault from, uniformly.
func soakFaults() []fault {
	return []fault{
		{"scheduler SIGKILL, restarted later", killScheduler},
		{"scheduler SIGSTOP, SIGCONT", stopProcess("scheduler", 12*time.Second)},
		{"executor SIGSTOP, SIGCONT", stopProcess("executor", 16*time.Second)},
		{"executor SIGKILL, restarted at once", killExecutor(false)},
		{"executor SIGKILL, restarted later", killExecutor(true)},
		{"scheduler cut off from etcd", partition("scheduler")},
		{"executor cut off from etcd", partition("executor")},
		{"one etcd member stopped", stopEtcd(1, 15*time.Second)},
		{"etcd quorum lost (two members stopped)", stopEtcd(2, 8*time.Second)},
		{"NATS restarted", restartNATS},
	}
}

// between is a duration in [lo, hi), to the millisecond, from rng.
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return (lo + time.Duration(rng.Int64N(int64(hi-lo)))).Truncate(time.Millisecond)
}

// target picks a process of kind: for schedulers the leader half of the
// time (when there is one), else any.
func (s *soak) target(rng *rand.Rand, kind string) *soakProc {
	ids := s.ids(kind)
	if kind == "scheduler" && rng.IntN(2) == 0 {
		if leader := s.c.Leader(s.t); s.procs[leader] != nil {
			return s.procs[leader]
		}
	}
	return s.procs[ids[rng.IntN(len(ids))]]
}

// killScheduler SIGKILLs a scheduler and starts it again 1–15 s later.
func killScheduler(s *soak, rng *rand.Rand) string {
	p := s.target(rng, "scheduler")
	down := between(rng, time.Second, 15*time.Second)
	leader := s.c.Leader(s.t)
	p.Kill()
	time.Sleep(down)
	p.Restart()
	return fmt.Sprintf("%s (leader: %s) killed, restarted after %s", p.Name, leader, down)
}

// stopProcess SIGSTOPs a process of kind for 1 s to most (several TTLs),
// then SIGCONTs it.
func stopProcess(kind string, most time.Duration) func(*soak, *rand.Rand) string {
	return func(s *soak, rng *rand.Rand) string {
		p := s.target(rng, kind)
		d := between(rng, time.Second, most)
		leader := s.c.Leader(s.t)
		p.Signal(syscall.SIGSTOP)
		time.Sleep(d)
		p.Signal(syscall.SIGCONT)
		return fmt.Sprintf("%s (leader: %s) stopped for %s", p.Name, leader, d)
	}
}

// killExecutor SIGKILLs an executor and starts it again at once (its
// runs, still held by its supervisor, are adopted) or, later, after 5–15 s
// (past the fence: its runs are killed and counted lost).
func killExecutor(later bool) func(*soak, *rand.Rand) string {
	return func(s *soak, rng *rand.Rand) string {
		p := s.target(rng, "executor")
		var down time.Duration
		if later {
			down = between(rng, 5*time.Second, 15*time.Second)
		}
		p.Kill()
		time.Sleep(down)
		p.Restart()
		return fmt.Sprintf("%s killed, restarted after %s", p.Name, down)
	}
}

// partition cuts a process's links to every etcd member (not to NATS) for
// 1–15 s, then heals them.
func partition(kind string) func(*soak, *rand.Rand) string {
	return func(s *soak, rng *rand.Rand) string {
		p := s.target(rng, kind)
		d := between(rng, time.Second, 15*time.Second)
		leader := s.c.Leader(s.t)
		for _, l := range p.links {
			l.Partition()
		}
		time.Sleep(d)
		for _, l := range p.links {
			l.Heal()
		}
		return fmt.Sprintf("%s (leader: %s) cut off from etcd for %s", p.Name, leader, d)
	}
}

// stopEtcd stops n etcd members (two: the quorum is lost) for 1 s to most
// after they have stopped, then starts them again.
func stopEtcd(n int, most time.Duration) func(*soak, *rand.Rand) string {
	return func(s *soak, rng *rand.Rand) string {
		members := rng.Perm(3)[:n]
		d := between(rng, time.Second, most)
		each := func(do func(int)) {
			var wg sync.WaitGroup
			for _, m := range members {
				wg.Add(1)
				go func() { defer wg.Done(); do(m) }()
			}
			wg.Wait()
		}
		began := time.Now()
		each(s.ec.stop)
		stopping := time.Since(began)
		time.Sleep(d)
		each(s.ec.start)
		return fmt.Sprintf("etcd members %v stopped (in %s), started again after %s", members, stopping.Round(time.Millisecond), d)
	}
}

// restartNATS stops NATS for 1–8 s and starts it again on its address.
func restartNATS(s *soak, rng *rand.Rand) string {
	d := between(rng, time.Second, 8*time.Second)
	s.nats.restart(s.t, d)
	return fmt.Sprintf("NATS down for %s", d)
}
