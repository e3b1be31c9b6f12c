package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Rare is a job that fires once a year: most of a large installation.
// RareJobs varies its schedule and time zone.
const Rare = `
name: NAME
schedule: "0 3 1 1 *"
command: /usr/local/bin/yearly-report --all
concurrency: forbid
`

// RareJobs returns n jobs like Rare, each once a year at one of 40,320
// distinct times (minute, hour and day of January) in one of four time
// zones, so that a scheduler holding them cannot get away with one parsed
// schedule: real installations have many distinct schedules and zones.
func RareJobs(n int) ([]*jobspec.Job, error) {
	jobs, err := Jobs(Rare, "rare", n)
	if err != nil {
		return nil, err
	}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}
	for i, j := range jobs {
		j.Schedule = fmt.Sprintf("%d %d %d 1 *", i%60, i/60%24, 1+i/1440%28)
		j.Timezone = zones[i%len(zones)]
	}
	return jobs, nil
}

// ScaleResult is what holding many jobs costs a scheduler process.
type ScaleResult struct {
	Jobs  int           `json:"jobs"`
	Apply time.Duration `json:"apply_ns"` // storing them all, as aion apply does
	// RSS is the leader's resident memory once it holds every job.
	RSS int64 `json:"leader_rss_bytes"`
	// IdleCPU is the leader's CPU use while only one job fires (every
	// second), in cores.
	IdleCPU float64 `json:"idle_cpu_cores"`
	// Takeover is the new leader's election (the old one's election key
	// deleted as its session expired) to its first planned fire, after the
	// old leader was SIGKILLed; FromKill counts from the kill.
	Takeover time.Duration `json:"takeover_ns"`
	FromKill time.Duration `json:"kill_to_first_fire_ns"`
}

func (r ScaleResult) String() string {
	return fmt.Sprintf("%d jobs: apply %s, leader RSS %d MiB, idle CPU %.3f cores, takeover (election → first fire) %s, SIGKILL → first fire %s",
		r.Jobs, r.Apply.Round(time.Millisecond), r.RSS>>20, r.IdleCPU, r.Takeover.Round(time.Millisecond), r.FromKill.Round(time.Millisecond))
}

// Scale applies n yearly jobs and one every-second job to a stack started
// with NoScheduler, runs two `aion scheduler` processes (bin) with the
// given session TTL, and measures the leader's memory and idle CPU, then
// SIGKILLs it and times the other's takeover.
//
// env is added to the scheduler processes' environment (e.g. GOMEMLIMIT).
func Scale(ctx context.Context, s *Stack, bin string, n int, ttl time.Duration, env []string) (ScaleResult, error) {
	res := ScaleResult{Jobs: n}
	jobs, err := RareJobs(n)
	if err != nil {
		return res, err
	}
	tick, err := Jobs(EverySecond, "tick", 1)
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := s.Apply(ctx, append(jobs, tick...)); err != nil {
		return res, err
	}
	res.Apply = time.Since(start)
	defer s.deleteJobs(context.WithoutCancel(ctx), "rare-")
	defer s.deleteJobs(context.WithoutCancel(ctx), "tick-")

	a, err := s.startScheduler(ctx, bin, "a", ttl, env)
	if err != nil {
		return res, err
	}
	defer a.kill()
	if _, err := s.waitFirstFire(ctx, "a", time.Time{}, 10*time.Minute); err != nil {
		return res, fmt.Errorf("first leader: %w", err)
	}
	b, err := s.startScheduler(ctx, bin, "b", ttl, env)
	if err != nil {
		return res, err
	}
	defer b.kill()
	if err := b.waitJobs(ctx, n+1, 10*time.Minute); err != nil {
		return res, fmt.Errorf("standby: %w", err)
	}
	time.Sleep(2 * time.Second) // settle: the leader is idle
	cpu0, t0 := a.cpu(), time.Now()
	time.Sleep(10 * time.Second)
	res.IdleCPU = (a.cpu() - cpu0).Seconds() / time.Since(t0).Seconds()
	if res.RSS, err = a.rss(); err != nil {
		return res, err
	}

	elected := s.watchLeaderGone(ctx, "a")
	killedAt := time.Now()
	a.kill()
	first, err := s.waitFirstFire(ctx, "b", killedAt, 10*time.Minute)
	if err != nil {
		return res, fmt.Errorf("takeover: %w", err)
	}
	res.FromKill = first.Sub(killedAt)
	select {
	case at := <-elected:
		res.Takeover = first.Sub(at)
	case <-time.After(time.Second):
		return res, errors.New("takeover: b planned a fire, but the end of a's leadership was not seen")
	}
	return res, nil
}

// process is a scheduler process started by the bench.
type process struct {
	cmd  *exec.Cmd
	addr string // its API, with /metrics
}

func (s *Stack) startScheduler(ctx context.Context, bin, id string, ttl time.Duration, env []string) (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	p, err := s.startProcess(ctx, bin, env, "scheduler", "--id", id, "--listen", addr, "--session-ttl", ttl.String())
	if err != nil {
		return nil, err
	}
	p.addr = addr
	return p, nil
}

// startProcess runs `bin command args...` against the stack's etcd and
// NATS, with env added to its environment, logging warnings and errors to
// this process's stderr.
func (s *Stack) startProcess(ctx context.Context, bin string, env []string, command string, args ...string) (*process, error) {
	args = append([]string{command, "--etcd", s.EtcdURL, "--nats", s.NATSURL, "--log-level", "warn"}, args...)
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", bin, command, err)
	}
	return &process{cmd: cmd}, nil
}

// waitJobs waits until the process holds at least n jobs in memory (its
// aion_scheduler_jobs metric): as a standby, it is then ready to lead.
func (p *process) waitJobs(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.addr + "/metrics"); err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "aion_scheduler_jobs "); ok {
					if f, err := strconv.ParseFloat(v, 64); err == nil && int(f) >= n {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("scheduler did not hold %d jobs within %s", n, timeout)
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// rss reads the process's resident memory from /proc.
func (p *process) rss() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("read rss: no VmRSS line")
}

// cpu reads the process's user plus system time from /proc.
func (p *process) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks: USER_HZ is 100 on Linux
}

// watchLeaderGone reports when scheduler id's election key is deleted (its
// session expired): the next candidate leads from then on.
func (s *Stack) watchLeaderGone(ctx context.Context, id string) <-chan time.Time {
	out := make(chan time.Time, 1)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	w := s.Etcd.Watch(wctx, s.Keys.Election(), clientv3.WithPrefix(), clientv3.WithPrevKV())
	go func() {
		defer cancel()
		for resp := range w {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete && ev.PrevKv != nil && string(ev.PrevKv.Value) == id {
					out <- time.Now()
					return
				}
			}
		}
	}()
	return out
}

// waitFirstFire waits for the first fire planned by scheduler id after
// since, and returns when it was planned.
func (s *Stack) waitFirstFire(ctx context.Context, id string, since time.Time, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := s.Etcd.Get(ctx, s.Keys.Fires()+"tick-", clientv3.WithPrefix())
		if err != nil {
			return time.Time{}, err
		}
		var first time.Time
		for _, kv := range resp.Kvs {
			var f store.Fire
			if json.Unmarshal(kv.Value, &f) == nil && f.PlannedBy == id && f.PlannedAt.After(since) && (first.IsZero() || f.PlannedAt.Before(first)) {
				first = f.PlannedAt
			}
		}
		if !first.IsZero() {
			return first, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("no fire planned by %s within %s", id, timeout)
}
