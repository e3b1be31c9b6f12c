package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aionsched/aion/executor/runoutput"
)

// Supervisor is an executor's connection to the supervisor of its runs
// directory.
type Supervisor struct {
	path  string // the program supervisors start from
	dir   string // the runs directory
	fence time.Duration

	mu     sync.Mutex
	conn   net.Conn        // nil when not connected; guarded by mu
	gone   chan struct{}   // closed when conn's supervisor has exited; guarded by mu
	runs   map[string]*Run // waiting for their end, by ID; guarded by mu
	listed chan []RunInfo  // the answer to a List under way; guarded by mu
}

// Run is one supervised run as its executor holds it.
type Run struct {
	id   string
	s    *Supervisor
	done chan struct{}
	said *Status // set before done is closed; nil: the supervisor died first
}

// ErrGone is the error of a request to a supervisor that has exited.
var ErrGone = errors.New("supervisor gone")

// maxSocketPath is the longest path a Unix socket may have (sun_path).
const maxSocketPath = 107

// Check runs the supervisor program at path with --check, so an executor
// that cannot start supervisors fails at start, not at its first run (a
// test binary without RunIfInvoked in its TestMain, say).
func Check(path string) error {
	cmd := exec.Command(path, "--check")
	cmd.Args[0] = ProcessName
	cmd.Env = []string{}
	out, err := cmd.Output()
	if err != nil || string(bytes.TrimSpace(out)) != checkReply {
		return fmt.Errorf("%s does not run supervisors (%v; it printed %q): the program must be aion-supervise or call supervisor.RunIfInvoked first thing", path, err, out)
	}
	return nil
}

// Open connects to the supervisor of the runs directory dir (made if
// missing, 0700), or starts one from the program at path when none
// answers. attached says it found one running: a predecessor's, whose runs
// Runs lists. fence is how long a supervisor this starts outlives its
// runs and its last beat.
func Open(path, dir string, fence time.Duration) (s *Supervisor, attached bool, err error) {
	if err := runoutput.MakeDir(dir); err != nil {
		return nil, false, fmt.Errorf("runs directory: %w", err)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // the supervisor's argument, whatever its working directory
	}
	s = &Supervisor{path: path, dir: dir, fence: fence, runs: make(map[string]*Run)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn, err := s.dial(); err == nil {
		s.serve(conn)
		return s, true, nil
	}
	return s, false, s.startLocked()
}

// dial connects to the supervisor's socket.
func (s *Supervisor) dial() (net.Conn, error) {
	sock, release, err := socketAddr(s.dir)
	if err != nil {
		return nil, err
	}
	defer release()
	return net.DialTimeout("unix", sock, time.Second)
}

// startLocked starts a supervisor and connects to it; s.mu is held. The
// executor binds the socket and hands it over, so it can connect before
// the supervisor accepts. The supervisor runs in a session of its own, so
// it outlives the executor and no signal to the executor's process group
// reaches it.
func (s *Supervisor) startLocked() error {
	_ = os.Remove(filepath.Join(s.dir, socketFile))
	sock, release, err := socketAddr(s.dir)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer release()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	lnFile, err := ln.File()
	_ = ln.Close()
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer lnFile.Close()
	logFile, err := os.OpenFile(filepath.Join(s.dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, runoutput.FileMode)
	if err != nil {
		return fmt.Errorf("supervisor log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(s.path, s.dir, s.fence.String())
	cmd.Args[0] = ProcessName
	cmd.Env = []string{} // nothing of the executor's environment: it may hold its credentials
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{lnFile}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reap it when it exits
	conn, err := net.Dial("unix", sock)
	if err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("connect to the supervisor: %w", err)
	}
	s.serve(conn)
	return nil
}

// serve takes conn as the connection to the supervisor and reads its
// events until it has exited; s.mu is held.
func (s *Supervisor) serve(conn net.Conn) {
	gone := make(chan struct{})
	s.conn, s.gone = conn, gone
	go func() {
		dec := json.NewDecoder(conn)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				break
			}
			s.mu.Lock()
			switch {
			case ev.Listed && s.listed != nil:
				s.listed <- ev.Runs
				s.listed = nil
			case ev.Ended != "":
				if r := s.runs[ev.Ended]; r != nil {
					delete(s.runs, ev.Ended)
					r.said = ev.Status
					close(r.done)
				}
			}
			s.mu.Unlock()
		}
		// The supervisor has exited (or died): the runs still waiting
		// ended with it, unsaid.
		s.mu.Lock()
		defer s.mu.Unlock()
		close(gone)
		if s.conn == conn {
			s.conn = nil
		}
		for id, r := range s.runs {
			delete(s.runs, id)
			close(r.done)
		}
		if s.listed != nil {
			close(s.listed)
			s.listed = nil
		}
	}()
}

// Start asks the supervisor to run spec as run id (unique on the node),
// starting a supervisor again if the one it had has exited. meta is kept
// with the run, for Runs.
func (s *Supervisor) Start(id string, spec Spec, meta []byte) (*Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		if err := s.startLocked(); err != nil {
			return nil, err
		}
	}
	r := &Run{id: id, s: s, done: make(chan struct{})}
	s.runs[id] = r
	if err := s.sendLocked(request{Start: &startRequest{ID: id, Spec: spec, Meta: meta}}); err != nil {
		delete(s.runs, id)
		return nil, fmt.Errorf("ask the supervisor to start the run: %w", err)
	}
	return r, nil
}

// Runs lists the runs the supervisor holds: those going, and those ended
// but not acknowledged (Ack).
func (s *Supervisor) Runs() ([]RunInfo, error) {
	s.mu.Lock()
	reply := make(chan []RunInfo, 1)
	s.listed = reply
	err := s.sendLocked(request{List: true})
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case runs, ok := <-reply:
		if !ok {
			return nil, ErrGone
		}
		return runs, nil
	case <-time.After(5 * time.Second):
		return nil, errors.New("the supervisor did not list its runs within 5 s")
	}
}

// Adopt holds run id, which Runs listed: its end comes as a started
// run's does (at once, if it has ended).
func (s *Supervisor) Adopt(id string) (*Run, error) {
	s.mu.Lock()
	if s.conn == nil {
		s.mu.Unlock()
		return nil, ErrGone
	}
	r := &Run{id: id, s: s, done: make(chan struct{})}
	s.runs[id] = r
	s.mu.Unlock()
	// It may have ended before it was held here, its end told to nobody:
	// look again.
	runs, err := s.Runs()
	if err != nil {
		return r, nil // the supervisor went: r is done, unsaid
	}
	for _, info := range runs {
		if info.ID == id && info.Status == nil {
			return r, nil
		}
	}
	var said *Status
	for _, info := range runs {
		if info.ID == id {
			said = info.Status
		}
	}
	s.mu.Lock()
	if s.runs[id] == r {
		delete(s.runs, id)
		r.said = said
		close(r.done)
	}
	s.mu.Unlock()
	return r, nil
}

// Ack tells the supervisor the end of run id is recorded: it forgets it.
func (s *Supervisor) Ack(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendLocked(request{Ack: id})
}

// Beat tells the supervisor its executor is alive and holds its lease.
func (s *Supervisor) Beat() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil // it exited: no run to keep alive
	}
	return s.sendLocked(request{Beat: true})
}

// Stop asks the supervisor to exit once no run is going, and waits for it
// (at most wait): for an executor that stops, its runs ended.
func (s *Supervisor) Stop(wait time.Duration) error {
	s.mu.Lock()
	gone := s.gone
	err := s.sendLocked(request{Exit: true})
	s.mu.Unlock()
	if err != nil || gone == nil {
		return err
	}
	select {
	case <-gone:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("the supervisor did not exit within %s", wait)
	}
}

// Close drops the connection; the supervisor goes on, and kills its runs
// if nobody beats it.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.Close()
}

func (s *Supervisor) sendLocked(r request) error {
	if s.conn == nil {
		return ErrGone
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = s.conn.Write(append(data, '\n'))
	return err
}

// ID is the run's ID.
func (r *Run) ID() string { return r.id }

// Done is closed once the run has ended, or its supervisor has exited.
func (r *Run) Done() <-chan struct{} { return r.done }

// Kill asks the supervisor to stop the run (SIGTERM, then SIGKILL after
// the grace period); reason is recorded in its status.
func (r *Run) Kill(reason string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.sendLocked(request{Kill: r.id, Reason: reason})
}

// Status is how the run ended, once Done is closed; ErrGone when its
// supervisor died first.
func (r *Run) Status() (Status, error) {
	<-r.done
	if r.said == nil {
		return Status{}, ErrGone
	}
	return *r.said, nil
}

// socketAddr is the address of the socket in the runs directory dir. A
// Unix socket's path has at most 107 bytes; a longer one is reached
// through a descriptor of dir (/proc/self/fd/N/ctl), which release closes
// once the socket is bound or connected.
func socketAddr(dir string) (addr string, release func(), err error) {
	if path := filepath.Join(dir, socketFile); len(path) <= maxSocketPath {
		return path, func() {}, nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), socketFile), func() { _ = d.Close() }, nil
}
