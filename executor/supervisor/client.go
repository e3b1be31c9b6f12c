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

	mu   sync.Mutex
	conn net.Conn        // nil until connected; guarded by mu
	gone chan struct{}   // closed when conn's supervisor has exited; guarded by mu
	runs map[string]*Run // waiting for their end, by directory; guarded by mu
}

// Run is one supervised run as its executor holds it.
type Run struct {
	dir  string
	s    *Supervisor
	done chan struct{}
	said *Status // as the supervisor told it; set before done is closed
}

// ErrGone is Adopt's error when the supervisor that ran a run is no longer
// there.
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
// may be adopted. fence is how long a supervisor this starts outlives its
// last run and beat.
func Open(path, dir string, fence time.Duration) (s *Supervisor, attached bool, err error) {
	if err := runoutput.MakeDir(dir); err != nil {
		return nil, false, fmt.Errorf("runs directory: %w", err)
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
			r := s.runs[ev.Run]
			delete(s.runs, ev.Run)
			s.mu.Unlock()
			if r != nil {
				st := ev.Status
				r.said = &st
				close(r.done)
			}
		}
		// The supervisor has exited (or died): runs still waiting ended
		// with it, saying so in their status files or not at all.
		s.mu.Lock()
		defer s.mu.Unlock()
		close(gone)
		if s.conn == conn {
			s.conn = nil
		}
		for dir, r := range s.runs {
			if r.s == s {
				delete(s.runs, dir)
				close(r.done)
			}
		}
	}()
}

// Start writes spec into the run's directory dir (made, 0700) and asks
// the supervisor to run it, starting a supervisor again if the one it had
// has exited.
func (s *Supervisor) Start(dir string, spec Spec) (*Run, error) {
	if err := runoutput.MakeDir(dir); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if err := writeJSON(dir, specFile, spec); err != nil {
		return nil, fmt.Errorf("write the run's spec: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		if err := s.startLocked(); err != nil {
			return nil, err
		}
	}
	r := &Run{dir: dir, s: s, done: make(chan struct{})}
	s.runs[dir] = r
	if err := s.sendLocked(request{Start: dir}); err != nil {
		delete(s.runs, dir)
		return nil, fmt.Errorf("ask the supervisor to start the run: %w", err)
	}
	return r, nil
}

// Adopt holds the run in dir, which a predecessor started under the
// supervisor Open attached to: its end comes as a started run's does. A
// run that has ended already is done at once, with its status file.
func (s *Supervisor) Adopt(dir string) (*Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil, ErrGone
	}
	r := &Run{dir: dir, s: s, done: make(chan struct{})}
	if _, err := ReadStatus(dir); err == nil {
		close(r.done)
		return r, nil
	}
	s.runs[dir] = r
	return r, nil
}

// Beat tells the supervisor its executor is alive and holds its lease.
func (s *Supervisor) Beat() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil // none started yet, or it exited: no run to keep alive
	}
	return s.sendLocked(request{Beat: true})
}

// Stop asks the supervisor to exit once it has no run, and waits for it
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

// Dir is the run's directory.
func (r *Run) Dir() string { return r.dir }

// Done is closed once the run has ended, or its supervisor has exited.
func (r *Run) Done() <-chan struct{} { return r.done }

// Kill asks the supervisor to stop the run (SIGTERM, then SIGKILL after
// the grace period); reason is recorded in its status.
func (r *Run) Kill(reason string) error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.sendLocked(request{Kill: r.dir, Reason: reason})
}

// Status is how the run ended, once Done is closed: as the supervisor
// said it, else as it wrote it in the run's directory; an error means its
// supervisor died without either.
func (r *Run) Status() (Status, error) {
	select {
	case <-r.done:
		if r.said != nil {
			return *r.said, nil
		}
	default:
	}
	return ReadStatus(r.dir)
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
