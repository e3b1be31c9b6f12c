package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the node's lock in its state (output) directory.
const lockFileName = ".aion-node.lock"

// nodeLock is an exclusive flock on the node's lock file, held for the
// executor's life. The kernel drops it when the process dies, however it
// dies, so whoever gets it knows the executor that held it before on this
// host is gone. The file holds the holder's PID, for the error a second
// executor gets and for the records of the runs a dead holder left.
type nodeLock struct {
	file *os.File
	// id names the lock across hosts: host name, the file's absolute path,
	// and its device and inode, so that two hosts (or containers) with the
	// same host name and path but files of their own, whose locks do not
	// exclude each other, never take each other's registration.
	// Registrations carry it (store.Node.Lock), so a successor knows a
	// registration is its dead predecessor's.
	id string
	// predecessor is the PID the file held when the lock was taken: the
	// last holder, now dead (0 if unknown or none).
	predecessor int
	// pidErr, when set, says why this holder's PID could not be written
	// in the file (a full disk): the lock holds all the same, the PID
	// only informs.
	pidErr error
}

// lockNode takes the lock in dir, or fails at once naming the live holder.
// The descriptor is close-on-exec, so runs never inherit it.
func lockNode(dir string) (*nodeLock, error) {
	abs, err := filepath.Abs(filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, fmt.Errorf("executor lock: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("executor lock: %w", err)
	}
	last := lockHolder(f)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "PID unknown: its file names none"
			if last != 0 {
				holder = "PID " + strconv.Itoa(last)
			}
			return nil, fmt.Errorf("executor: %s is in use by another live executor (%s, holding %s); give each executor its own output directory", dir, holder, abs)
		}
		return nil, fmt.Errorf("executor lock %s: %w", abs, err)
	}
	// The PID only informs (another executor's error, the takeover's
	// log): a full disk, which fails the write of a new lock file, must
	// not keep the executor from starting, as its runs can still run.
	var pidErr error
	if err := writePID(f); err != nil {
		pidErr = fmt.Errorf("executor lock %s: write this executor's PID: %w", abs, err)
	}
	host, err := os.Hostname()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("executor lock: host name: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("executor lock %s: %w", abs, err)
	}
	id := host + ":" + abs
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id += fmt.Sprintf("@%d:%d", st.Dev, st.Ino)
	}
	return &nodeLock{file: f, id: id, predecessor: last, pidErr: pidErr}, nil
}

// lockHolder reads the PID in the lock file (0 if none).
func lockHolder(f *os.File) int {
	buf := make([]byte, 32)
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return 0
	}
	return pid
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// release drops the lock (the file stays for the next holder).
func (l *nodeLock) release() error { return l.file.Close() }
