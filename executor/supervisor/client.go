package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aionsched/aion/executor/runoutput"
)

// Run is a supervised run as its executor holds it: the connection to its
// supervisor.
type Run struct {
	dir  string
	conn net.Conn
	mu   sync.Mutex // serializes writes to conn
	done chan struct{}
	// said is the status the supervisor sent before exiting, if it did;
	// set before done is closed.
	said *Status
}

// ErrGone is Attach's error when no supervisor listens in a run's
// directory any more.
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
		return fmt.Errorf("%s does not run supervisors (%v; it printed %q): the program must call supervisor.RunIfInvoked first thing", path, err, out)
	}
	return nil
}

// Start makes the run's directory dir (0700), writes spec there, starts
// a supervisor from the program at path and connects to it. The
// supervisor runs in a session of its own, so it outlives the executor
// and no signal to the executor's process group reaches it.
func Start(path, dir string, spec Spec) (*Run, error) {
	if err := runoutput.MakeDir(dir); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	if err := writeJSON(dir, specFile, spec); err != nil {
		return nil, fmt.Errorf("write the run's spec: %w", err)
	}
	// The executor binds the socket and hands it over: it can connect at
	// once, before the supervisor accepts.
	_ = os.Remove(filepath.Join(dir, socketFile))
	sock, release, err := socketAddr(dir)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer release()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	lnFile, err := ln.File()
	_ = ln.Close()
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer lnFile.Close()
	logFile, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, runoutput.FileMode)
	if err != nil {
		return nil, fmt.Errorf("supervisor log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(path, dir)
	cmd.Args[0] = ProcessName
	cmd.Env = []string{} // nothing of the executor's environment: it may hold its credentials
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{lnFile}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reap it; Done says when it ended
	conn, err := net.Dial("unix", sock)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("connect to the supervisor: %w", err)
	}
	return newRun(dir, conn), nil
}

// Attach connects to the supervisor of the run in dir, started by an
// earlier executor of this node. ErrGone means none listens there: it
// has exited (its status, if it wrote one, is in ReadStatus) or died.
func Attach(dir string) (*Run, error) {
	sock, release, err := socketAddr(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	defer release()
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	return newRun(dir, conn), nil
}

// socketAddr is the address of the socket of the run in dir. A Unix
// socket's path has at most 107 bytes; a longer one is reached through a
// descriptor of dir (/proc/self/fd/N/ctl.sock), which release closes once
// the socket is bound or connected.
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

func newRun(dir string, conn net.Conn) *Run {
	r := &Run{dir: dir, conn: conn, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		// The supervisor sends one line, its status, as it exits.
		var st Status
		if json.NewDecoder(conn).Decode(&st) == nil {
			r.said = &st
		}
		_, _ = io.Copy(io.Discard, conn) // until it has exited
	}()
	return r
}

// Dir is the run's directory.
func (r *Run) Dir() string { return r.dir }

// Done is closed once the supervisor has exited; its status is then in
// Status.
func (r *Run) Done() <-chan struct{} { return r.done }

// Beat tells the supervisor its executor is alive and holds its lease.
func (r *Run) Beat() error { return r.send(message{Beat: true}) }

// Kill asks the supervisor to stop the run (SIGTERM, then SIGKILL after
// the grace period); reason is recorded in its status.
func (r *Run) Kill(reason string) error { return r.send(message{Kill: reason}) }

func (r *Run) send(m message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err = r.conn.Write(append(data, '\n'))
	return err
}

// Status is how the run ended, once Done is closed: as the supervisor
// said it on the connection, else as it wrote it in the run's directory;
// an error means it died without either.
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

// Close drops the connection; the supervisor goes on (and is fenced if
// nobody beats it).
func (r *Run) Close() error { return r.conn.Close() }
