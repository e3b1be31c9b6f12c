package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aionsched/aion/executor/runoutput"
)

// ProcessName is argv[0] of a supervisor process: what RunIfInvoked looks
// for, and what ps shows.
const ProcessName = "aion-supervise"

// checkReply is what a supervisor program answers to --check.
const checkReply = "aion-supervise ok"

// RunIfInvoked runs the supervisor and exits when this process was started
// as one (argv[0] is ProcessName); otherwise it returns at once. A program
// that runs an executor calls it first thing in main, and so does the
// TestMain of a test binary that does: the executor starts supervisors
// from its own binary.
func RunIfInvoked() {
	if filepath.Base(os.Args[0]) != ProcessName {
		return
	}
	os.Exit(Main(os.Args[1:]))
}

// Main is the supervisor process: aion-supervise DIR FENCE supervises the
// runs the executor of the runs directory DIR asks for, on the socket it
// passed as file descriptor 3, and exits once no run is going and it has
// heard no beat for FENCE. aion-supervise --check answers that the program is one. It
// returns the process's exit code.
func Main(args []string) int {
	switch {
	case len(args) == 1 && args[0] == "--check":
		fmt.Println(checkReply)
		return 0
	case len(args) != 2:
		fmt.Fprintln(os.Stderr, "usage: "+ProcessName+" DIR FENCE")
		return 2
	}
	idle, err := time.ParseDuration(args[1])
	if err != nil || idle <= 0 {
		fmt.Fprintf(os.Stderr, "%s: fence %q: want a duration such as 3s\n", ProcessName, args[1])
		return 2
	}
	// FileListener takes a duplicate (close-on-exec); descriptor 3 itself
	// is closed, so runs do not inherit the socket.
	inherited := os.NewFile(3, socketFile)
	ln, err := net.FileListener(inherited)
	_ = inherited.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: control socket (file descriptor 3): %v\n", ProcessName, args[0], err)
		return 1
	}
	d := newDaemon(idle)
	go d.accept(ln)
	d.wait()
	_ = ln.Close()
	return 0
}

// outputDrain is how long a run's end waits for the last of its output:
// the process group is killed by then, so only a process that left the
// group can hold the pipe longer.
const outputDrain = 500 * time.Millisecond

// fenceCheck is how often fences are looked at: the most a fenced run
// outlives its fence by, but for the kernel's delivery of SIGKILL.
const fenceCheck = 50 * time.Millisecond

// daemon is the state of a supervisor process.
type daemon struct {
	idle     time.Duration        // exit with no run going and no beat for this long
	lastBeat atomic.Int64         // clock() of the last beat
	exit     atomic.Bool          // asked to exit once no run is going
	clock    func() time.Duration // CLOCK_BOOTTIME
	signal   func(pgid int, sig syscall.Signal) error

	mu      sync.Mutex
	conns   map[net.Conn]bool    // the executors' connections; guarded by mu
	runs    map[string]*runState // by ID, until acknowledged; guarded by mu
	going   int                  // runs not ended; guarded by mu
	changed chan struct{}        // a run ended (buffered 1)
}

// runState is a run the daemon holds.
type runState struct {
	meta    json.RawMessage
	kills   chan string   // kill requests' reasons
	release chan struct{} // closed by an Ack of a container's fence not ended
	acked   bool          // forget it once it has ended
	status  *Status       // set when it ended
}

func newDaemon(idle time.Duration) *daemon {
	d := &daemon{idle: idle, clock: BootTime,
		signal: func(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) },
		conns:  make(map[net.Conn]bool), runs: make(map[string]*runState), changed: make(chan struct{}, 1)}
	d.lastBeat.Store(int64(d.clock()))
	return d
}

// wait returns once no run is going and the daemon was asked to exit or
// has heard no beat for idle.
func (d *daemon) wait() {
	tick := time.NewTicker(fenceCheck)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-d.changed:
		}
		d.mu.Lock()
		done := d.going == 0 && (d.exit.Load() || d.silentFor(d.idle))
		d.mu.Unlock()
		if done {
			return
		}
	}
}

// accept serves the executors' connections.
func (d *daemon) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.conns[conn] = true
		d.mu.Unlock()
		go d.read(conn)
	}
}

// read takes the requests of one connection until it closes.
func (d *daemon) read(conn net.Conn) {
	defer func() {
		d.mu.Lock()
		delete(d.conns, conn)
		d.mu.Unlock()
		_ = conn.Close()
	}()
	dec := json.NewDecoder(conn)
	for {
		var r request
		if err := dec.Decode(&r); err != nil {
			return // the executor went (it may come back)
		}
		switch {
		case r.Beat:
			d.lastBeat.Store(int64(d.clock()))
		case r.Start != nil:
			d.start(*r.Start)
		case r.Kill != "":
			d.mu.Lock()
			st, ok := d.runs[r.Kill]
			d.mu.Unlock()
			if ok {
				select {
				case st.kills <- r.Reason:
				default: // a kill is on its way already
				}
			}
		case r.Ack != "":
			d.ack(r.Ack)
		case r.List:
			d.send(conn, d.list())
		case r.Exit:
			d.exit.Store(true)
			d.poke()
		}
	}
}

// ack forgets run id, whose end is recorded. A container's fence ends
// then (released), and is forgotten once it has.
func (d *daemon) ack(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.runs[id]
	switch {
	case !ok:
	case st.status != nil:
		delete(d.runs, id)
	case !st.acked:
		st.acked = true
		close(st.release)
	}
}

// list is the answer to a List request.
func (d *daemon) list() event {
	d.mu.Lock()
	defer d.mu.Unlock()
	ev := event{Listed: true}
	for id, st := range d.runs {
		ev.Runs = append(ev.Runs, RunInfo{ID: id, Meta: st.meta, Status: st.status})
	}
	return ev
}

// start starts a run, once per ID.
func (d *daemon) start(req startRequest) {
	d.mu.Lock()
	if _, dup := d.runs[req.ID]; dup {
		d.mu.Unlock()
		return
	}
	st := &runState{meta: req.Meta, kills: make(chan string, 1), release: make(chan struct{})}
	d.runs[req.ID] = st
	d.going++
	d.mu.Unlock()
	go func() {
		status := (&run{d: d, spec: req.Spec, kills: st.kills, release: st.release}).run()
		d.mu.Lock()
		st.status = &status
		d.going--
		if st.acked {
			delete(d.runs, req.ID)
		}
		d.mu.Unlock()
		d.broadcast(event{Ended: req.ID, Status: &status})
		d.poke()
	}()
}

func (d *daemon) poke() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// broadcast sends ev to every connected executor.
func (d *daemon) broadcast(ev event) {
	d.mu.Lock()
	conns := make([]net.Conn, 0, len(d.conns))
	for conn := range d.conns {
		conns = append(conns, conn)
	}
	d.mu.Unlock()
	for _, conn := range conns {
		d.send(conn, ev)
	}
}

// send writes ev as one line to conn. Lines to one connection come from
// its reader (List answers) and from runs' ends; each is one Write, which
// a stream socket does not interleave.
func (d *daemon) send(conn net.Conn, ev event) {
	data, err := json.Marshal(ev)
	if err != nil {
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write(append(data, '\n'))
}

// silentFor reports whether no beat came for longer than limit.
func (d *daemon) silentFor(limit time.Duration) bool {
	return d.clock()-time.Duration(d.lastBeat.Load()) > limit
}

// run is one run of a daemon.
type run struct {
	d       *daemon
	spec    Spec
	kills   <-chan string
	release <-chan struct{}
}

// fenced reports whether the executor has been silent for longer than the
// fence.
func (r *run) fenced() bool { return r.d.silentFor(r.spec.Fence) }

// run runs the job to its end and returns its status.
func (r *run) run() Status {
	tick := time.NewTicker(fenceCheck)
	defer tick.Stop()
	if r.spec.Container != nil {
		return r.fenceContainer(tick.C)
	}
	if until := time.Until(r.spec.StartAt); until > 0 {
		start := time.NewTimer(until)
		defer start.Stop()
	wait:
		for {
			select {
			case <-start.C:
				break wait
			case reason := <-r.kills:
				return Status{Ending: Killed, Reason: reason, EndedAt: time.Now().UTC()}
			case <-tick.C:
				if r.fenced() {
					return Status{Ending: Fenced, Reason: r.fenceReason(), EndedAt: time.Now().UTC()}
				}
			}
		}
	}

	keeper := &runoutput.Keeper{Path: r.spec.Output, Limit: r.spec.OutputLimit, TailBytes: r.spec.TailBytes}
	pipe, err := runoutput.StartPipe(keeper)
	if err != nil {
		return Status{Ending: NoStart, Reason: fmt.Sprintf("output pipe: %v", err), EndedAt: time.Now().UTC()}
	}
	cmd := r.command(pipe.W)
	startedAt := time.Now()
	if err := cmd.Start(); err != nil {
		return Status{Ending: NoStart, Reason: fmt.Sprintf("start: %v", err), EndedAt: time.Now().UTC(),
			Output: kept(pipe.Finish(0))}
	}
	pipe.Started()
	pid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	st := r.wait(pid, waited, tick.C)
	// Whatever the process left behind in its group goes too.
	_ = r.d.signal(pid, syscall.SIGKILL)
	st.PID, st.StartedAt, st.EndedAt = pid, startedAt.UTC(), time.Now().UTC()
	st.ExitCode = exitCode(cmd.ProcessState)
	st.Output = kept(pipe.Finish(outputDrain))
	return st
}

// fenceContainer holds the fence of a container the executor runs: when
// the fence passes it kills the container through its engine, and the
// run ends Fenced; a kill request kills it at once (the executor stops
// its containers itself, with their grace period: it asks this only of a
// container it cannot reach), and the run ends Killed. Either kill is
// tried again until the engine answers. An Ack releases the fence.
func (r *run) fenceContainer(tick <-chan time.Time) Status {
	for {
		var st Status
		select {
		case <-r.release:
			return Status{Ending: Released, EndedAt: time.Now().UTC()}
		case reason := <-r.kills:
			st = Status{Ending: Killed, Reason: reason}
		case <-tick:
			if !r.fenced() {
				continue
			}
			st = Status{Ending: Fenced, Reason: r.fenceReason()}
		}
		for {
			err := killContainer(*r.spec.Container)
			if err == nil {
				st.EndedAt = time.Now().UTC()
				return st
			}
			fmt.Fprintf(os.Stderr, "%s: kill container %s (%s): %v; trying again\n", ProcessName, r.spec.Container.ID, st.Ending, err)
			select {
			case <-r.release:
				return Status{Ending: Released, EndedAt: time.Now().UTC()}
			case <-time.After(fenceCheck):
			}
		}
	}
}

// command builds the job's process: in a process group of its own (the
// group is what is stopped), killed if the supervisor dies, as the spec's
// user.
func (r *run) command(out *os.File) *exec.Cmd {
	cmd := exec.Command(r.spec.Path)
	cmd.Args, cmd.Env, cmd.Dir = r.spec.Args, r.spec.Env, r.spec.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if r.spec.UID != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: *r.spec.UID, Gid: r.spec.GID, Groups: r.spec.Groups}
	}
	return cmd
}

// wait waits for the started process to end. The timeout or a kill
// request stops its group (SIGTERM, SIGKILL after the grace period); the
// fence kills it at once.
func (r *run) wait(pid int, waited <-chan error, tick <-chan time.Time) Status {
	var timeout <-chan time.Time
	if r.spec.Timeout > 0 {
		timer := time.NewTimer(r.spec.Timeout)
		defer timer.Stop()
		timeout = timer.C
	}
	var st Status
	var escalate <-chan time.Time // the grace period of a stop under way
	for {
		select {
		case <-waited:
			if st.Ending == "" {
				st.Ending = Exited
			}
			return st
		case <-timeout:
			timeout = nil
			if st.Ending == "" {
				st.Ending = TimedOut
				escalate = r.stop(pid)
			}
		case reason := <-r.kills:
			if st.Ending == "" {
				st.Ending, st.Reason = Killed, reason
				escalate = r.stop(pid)
			}
		case <-escalate:
			escalate, st.Escalated = nil, true
			_ = r.d.signal(pid, syscall.SIGKILL)
		case <-tick:
			if st.Ending != Fenced && r.fenced() {
				st.Ending, st.Reason = Fenced, r.fenceReason()
				_ = r.d.signal(pid, syscall.SIGKILL)
			}
		}
	}
}

// stop sends SIGTERM to the group and returns when to send SIGKILL.
func (r *run) stop(pid int) <-chan time.Time {
	_ = r.d.signal(pid, syscall.SIGTERM)
	return time.After(r.spec.Grace)
}

func (r *run) fenceReason() string {
	return fmt.Sprintf("killed: its executor gave no sign of life (nor of holding its etcd lease) for %s, the run's fence; the leader counts such runs as lost", r.spec.Fence)
}

// exitCode is the exit code of an ended process, 128+N when signal N
// killed it.
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func kept(k runoutput.Kept) Kept {
	return Kept{Tail: k.Tail, Path: k.Path, Err: k.Err, Limit: k.Limit}
}

// BootTime reads CLOCK_BOOTTIME: like the monotonic clock, but it counts
// the time the machine was suspended, so a fence expires across a
// suspend (a paused VM) instead of restarting from where it stopped. The
// executor counts its lease on it too.
func BootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(errors.Join(errors.New("supervisor: read CLOCK_BOOTTIME"), err)) // Linux has had it since 2.6.39
	}
	return time.Duration(ts.Nano())
}
