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

// Main is the supervisor process: aion-supervise DIR supervises the run
// whose spec is in DIR, on the socket the executor passed it as file
// descriptor 3. aion-supervise --check answers that the program is one.
// It returns the process's exit code: 0 once the status is written.
func Main(args []string) int {
	switch {
	case len(args) == 1 && args[0] == "--check":
		fmt.Println(checkReply)
		return 0
	case len(args) != 1:
		fmt.Fprintln(os.Stderr, "usage: "+ProcessName+" DIR")
		return 2
	}
	if err := supervise(args[0]); err != nil {
		fmt.Fprintf(os.Stderr, "%s %s: %v\n", ProcessName, args[0], err)
		return 1
	}
	return 0
}

// outputDrain is how long a run's end waits for the last of its output:
// the process group is killed by then, so only a process that left the
// group can hold the pipe longer.
const outputDrain = 500 * time.Millisecond

// fenceCheck is how often the fence is looked at: the most a fenced run
// outlives its fence by, but for the kernel's delivery of SIGKILL.
const fenceCheck = 50 * time.Millisecond

// supervisor is the state of one supervisor process.
type supervisor struct {
	spec     Spec
	mu       sync.Mutex
	conns    []net.Conn           // the executors' connections; guarded by mu
	lastBeat atomic.Int64         // clock() of the last beat
	kills    chan string          // kill requests' reasons
	clock    func() time.Duration // CLOCK_BOOTTIME
	signal   func(pgid int, sig syscall.Signal) error
}

func supervise(dir string) error {
	var spec Spec
	data, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("spec: %w", err)
	}
	// FileListener takes a duplicate (close-on-exec); descriptor 3 itself
	// is closed, so the job does not inherit the socket.
	inherited := os.NewFile(3, socketFile)
	ln, err := net.FileListener(inherited)
	_ = inherited.Close()
	if err != nil {
		return fmt.Errorf("control socket (file descriptor 3): %w", err)
	}
	defer ln.Close()
	s := &supervisor{spec: spec, kills: make(chan string, 1), clock: bootTime,
		signal: func(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }}
	s.lastBeat.Store(int64(s.clock()))
	go s.accept(ln)
	st := s.run()
	// The file first (for an executor that comes later), then the
	// connected executors; on a full disk they still hear it.
	err = writeJSON(dir, statusFile, st)
	s.announce(st)
	return err
}

// announce sends the status to every connected executor.
func (s *supervisor) announce(st Status) {
	data, err := json.Marshal(st)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, conn := range s.conns {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(append(data, '\n'))
	}
}

// accept serves the executor's connections until the listener closes:
// each line of each is a beat or a kill request.
func (s *supervisor) accept(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return // closed: the run has ended
		}
		s.mu.Lock()
		s.conns = append(s.conns, conn)
		s.mu.Unlock()
		go s.read(conn)
	}
}

// read takes the messages of one connection until it closes. The
// connection stays open while the supervisor lives: its end tells the
// executor the supervisor has exited.
func (s *supervisor) read(conn net.Conn) {
	dec := json.NewDecoder(conn)
	for {
		var m message
		if err := dec.Decode(&m); err != nil {
			return // the executor went (it may come back: Attach)
		}
		if m.Beat {
			s.lastBeat.Store(int64(s.clock()))
		}
		if m.Kill != "" {
			select {
			case s.kills <- m.Kill:
			default: // a kill is on its way already
			}
		}
	}
}

// fenced reports whether the executor has been silent for longer than the
// fence.
func (s *supervisor) fenced() bool {
	return s.clock()-time.Duration(s.lastBeat.Load()) > s.spec.Fence
}

// run runs the job to its end and returns its status.
func (s *supervisor) run() Status {
	tick := time.NewTicker(fenceCheck)
	defer tick.Stop()
	if until := time.Until(s.spec.StartAt); until > 0 {
		start := time.NewTimer(until)
		defer start.Stop()
	wait:
		for {
			select {
			case <-start.C:
				break wait
			case reason := <-s.kills:
				return Status{Ending: Killed, Reason: reason, EndedAt: time.Now().UTC()}
			case <-tick.C:
				if s.fenced() {
					return Status{Ending: Fenced, Reason: s.fenceReason(), EndedAt: time.Now().UTC()}
				}
			}
		}
	}

	keeper := &runoutput.Keeper{Path: s.spec.Output, Limit: s.spec.OutputLimit, TailBytes: s.spec.TailBytes}
	pipe, err := runoutput.StartPipe(keeper)
	if err != nil {
		return Status{Ending: NoStart, Reason: fmt.Sprintf("output pipe: %v", err), EndedAt: time.Now().UTC()}
	}
	cmd := s.command(pipe.W)
	startedAt := time.Now()
	if err := cmd.Start(); err != nil {
		return Status{Ending: NoStart, Reason: fmt.Sprintf("start: %v", err), EndedAt: time.Now().UTC(),
			Output: kept(pipe.Finish(0))}
	}
	pipe.Started()
	pid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	st := s.wait(pid, waited, tick.C)
	// Whatever the process left behind in its group goes too.
	_ = s.signal(pid, syscall.SIGKILL)
	st.PID, st.StartedAt, st.EndedAt = pid, startedAt.UTC(), time.Now().UTC()
	st.ExitCode = exitCode(cmd.ProcessState)
	st.Output = kept(pipe.Finish(outputDrain))
	return st
}

// command builds the job's process: in a process group of its own (the
// group is what is stopped), killed if the supervisor dies, as the spec's
// user.
func (s *supervisor) command(out *os.File) *exec.Cmd {
	cmd := exec.Command(s.spec.Path)
	cmd.Args, cmd.Env, cmd.Dir = s.spec.Args, s.spec.Env, s.spec.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.spec.UID != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: *s.spec.UID, Gid: s.spec.GID, Groups: s.spec.Groups}
	}
	return cmd
}

// wait waits for the started process to end. The timeout or a kill
// request stops its group (SIGTERM, SIGKILL after the grace period); the
// fence kills it at once.
func (s *supervisor) wait(pid int, waited <-chan error, tick <-chan time.Time) Status {
	var timeout <-chan time.Time
	if s.spec.Timeout > 0 {
		timer := time.NewTimer(s.spec.Timeout)
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
				escalate = s.stop(pid)
			}
		case reason := <-s.kills:
			if st.Ending == "" {
				st.Ending, st.Reason = Killed, reason
				escalate = s.stop(pid)
			}
		case <-escalate:
			escalate, st.Escalated = nil, true
			_ = s.signal(pid, syscall.SIGKILL)
		case <-tick:
			if st.Ending != Fenced && s.fenced() {
				st.Ending, st.Reason = Fenced, s.fenceReason()
				_ = s.signal(pid, syscall.SIGKILL)
			}
		}
	}
}

// stop sends SIGTERM to the group and returns when to send SIGKILL.
func (s *supervisor) stop(pid int) <-chan time.Time {
	_ = s.signal(pid, syscall.SIGTERM)
	return time.After(s.spec.Grace)
}

func (s *supervisor) fenceReason() string {
	return fmt.Sprintf("killed: its executor gave no sign of life (nor of holding its etcd lease) for %s, the run's fence; the leader counts such runs as lost", s.spec.Fence)
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

// bootTime reads CLOCK_BOOTTIME: like the monotonic clock, but it counts
// the time the machine was suspended, so a fence expires across a
// suspend (a paused VM) instead of restarting from where it stopped.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(errors.Join(errors.New("supervisor: read CLOCK_BOOTTIME"), err)) // Linux has had it since 2.6.39
	}
	return time.Duration(ts.Nano())
}
