package clustertest

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestHost_CutAndHeal proves a Host's partitions: from its namespace it
// reaches two servers on the hub address; CutPort cuts the connections to
// one port (a connection attempt hangs until its timeout, it is not
// refused), Cut both, and Heal restores both. Two Hosts have distinct
// subnets.
func TestHost_CutAndHeal(t *testing.T) {
	SkipShort(t, "network namespaces (connection attempts that time out, about 6 s)")
	hub := NewHub(t)
	h := NewHost(t, "h")
	if other := NewHost(t, "other"); other.Addr == h.Addr || other.Name == h.Name {
		t.Fatalf("two hosts share %s / %s", other.Name, other.Addr)
	}
	a, b := listen(t, hub), listen(t, hub)
	reach := func(port int) bool {
		t.Helper()
		// bash's /dev/tcp connects; timeout gives up after 2 s (status 124).
		cmd := exec.Command("ip", "netns", "exec", h.Name, "timeout", "2", "bash", "-c",
			"exec 3<>/dev/tcp/"+hub+"/"+strconv.Itoa(port))
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return true
		case errors.As(err, &exit) && exit.ExitCode() == 124:
			return false
		default:
			t.Fatalf("connect from %s to port %d: %v (want success or a hang)", h.Name, port, err)
			return false
		}
	}
	want := func(step string, wantA, wantB bool) {
		t.Helper()
		if gotA, gotB := reach(a), reach(b); gotA != wantA || gotB != wantB {
			t.Errorf("%s: reach port a %v, b %v; want %v, %v", step, gotA, gotB, wantA, wantB)
		}
	}
	want("before any cut", true, true)
	if err := h.CutPort(a); err != nil {
		t.Fatal(err)
	}
	want("port a cut", false, true)
	if err := h.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := h.Cut(); err != nil {
		t.Fatal(err)
	}
	want("all cut", false, false)
	if err := h.Heal(); err != nil {
		t.Fatal(err)
	}
	want("healed", true, true)
}

// listen accepts connections on ip:0 until the test ends and returns the
// port.
func listen(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			time.AfterFunc(5*time.Second, func() { _ = c.Close() })
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNewHost_RemovesStaleHosts: a namespace of ours whose test process is
// gone (a run killed before its cleanup) is deleted, with its veth pair,
// by the next NewHost.
func TestNewHost_RemovesStaleHosts(t *testing.T) {
	if ok, why := NetnsAvailable(); !ok {
		t.Skipf("network namespaces not available: %s", why)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	var stale *Host
	for stale == nil {
		h, err := newHost(rand.IntN(hostIndexes), dead.Process.Pid)
		if err != nil && !errors.Is(err, errIndexTaken) {
			t.Fatal(err)
		}
		stale = h
	}
	t.Cleanup(func() { _ = run("ip", "netns", "del", stale.Name) })
	NewHost(t, "fresh")
	if _, err := os.Stat("/run/netns/" + stale.Name); !os.IsNotExist(err) {
		t.Errorf("stale namespace %s (process %d gone) still there: %v", stale.Name, dead.Process.Pid, err)
	}
	// The kernel deletes a namespace's links a moment after its last user.
	WaitFor(t, 5*time.Second, "the stale host's veth to be gone", func() bool {
		out, err := exec.Command("ip", "-o", "addr", "show", "to", stale.Gateway).Output()
		return err == nil && len(out) == 0
	})
}
