package clustertest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A Host is a network namespace of its own, for partitions that cut real
// links: processes started in it (StartProcessIn) reach the test's
// namespace over a veth pair only, and Cut drops every packet on that
// pair. Unlike Proxy, it cuts the kernel's link, so it cuts every
// connection of the process, to etcd and to NATS, and those it has not
// opened yet.
//
// Each Host has a /30 of 10.213.0.0/16 (a machine that routes that range
// elsewhere cannot use Hosts): the test's end of the veth (named
// like the namespace's index, aion<N>) is Gateway, the namespace's end
// (eth0) is Addr, and the namespace's default route goes to Gateway. The
// test's namespace accepts packets for any of its own addresses on any
// link, so a Host reaches the gateway of every other Host: a server that
// listens on one Hub address is reachable from all of them.
//
// The namespace is named aion-<N>-p<PID of the test process>. Creating
// the veth aion<N> is what claims N, so tests running in parallel, in one
// test binary or several, never share a subnet; namespaces whose test
// process is gone (a run killed before its cleanup) are deleted by the
// next NewHost.
type Host struct {
	Name    string // the namespace, for ip netns exec
	Addr    string // the namespace's address
	Gateway string // the test namespace's address on the link
}

// hostIndexes is how many Hosts (/30s of 10.213.0.0/16) there can be.
const hostIndexes = 1 << 14

// netnsPrefix begins the name of every namespace this file makes.
const netnsPrefix = "aion-"

// NetnsAvailable reports whether Hosts can be made here, and if not why
// (not root, no ip or iptables command, namespaces or veth pairs or
// firewall rules refused): it makes a namespace with a veth pair and a
// rule in it, and deletes them.
func NetnsAvailable() (ok bool, why string) {
	if os.Geteuid() != 0 {
		return false, "not root (network namespaces need CAP_NET_ADMIN)"
	}
	for _, cmd := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(cmd); err != nil {
			return false, fmt.Sprintf("no %s command: %v", cmd, err)
		}
	}
	name := fmt.Sprintf("%sprobe-%d-p%d", netnsPrefix, rand.IntN(1<<30), os.Getpid())
	if err := run("ip", "netns", "add", name); err != nil {
		return false, err.Error()
	}
	defer func() { _ = run("ip", "netns", "del", name) }()
	steps := [][]string{
		{"ip", "-n", name, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"},
		{"ip", "netns", "exec", name, "iptables", "-w", "5", "-A", "INPUT", "-i", "probe0", "-j", "DROP"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return false, err.Error()
		}
	}
	return true, ""
}

// NewHost makes a Host, named in logs by name; its namespace is deleted
// when the test ends (a process still in it, a supervisor outliving its
// executor, keeps it and its link until it exits). The test is skipped,
// with the reason, when NetnsAvailable says no.
func NewHost(t testing.TB, name string) *Host {
	t.Helper()
	if ok, why := NetnsAvailable(); !ok {
		t.Skipf("network namespaces not available: %s", why)
	}
	removeStaleHosts(t)
	const attempts = 20
	for range attempts {
		h, err := newHost(rand.IntN(hostIndexes), os.Getpid())
		if errors.Is(err, errIndexTaken) {
			continue
		}
		if err != nil {
			t.Fatalf("host %s: %v", name, err)
		}
		t.Cleanup(func() {
			if err := run("ip", "netns", "del", h.Name); err != nil {
				t.Errorf("delete host %s: %v", name, err)
			}
		})
		t.Logf("host %s: namespace %s, address %s, gateway %s", name, h.Name, h.Addr, h.Gateway)
		return h
	}
	t.Fatalf("host %s: %d subnets tried, all taken", name, attempts)
	return nil
}

// NewHub makes a Host that runs nothing and returns its Gateway: an
// address of the test's namespace that every Host reaches and no Cut of
// another Host affects, for the test's servers to listen on (ListenOn).
func NewHub(t testing.TB) string {
	t.Helper()
	return NewHost(t, "hub").Gateway
}

var errIndexTaken = errors.New("subnet taken")

// newHost makes the namespace and veth pair of index i, the i-th /30 of
// 10.213.0.0/16, for the test process pid.
func newHost(i, pid int) (*Host, error) {
	gw := netip.AddrFrom4([4]byte{10, 213, byte(i >> 6), byte(i << 2)}).Next()
	h := &Host{Name: fmt.Sprintf("%s%d-p%d", netnsPrefix, i, pid), Gateway: gw.String(), Addr: gw.Next().String()}
	link := "aion" + strconv.Itoa(i)
	if err := run("ip", "netns", "add", h.Name); err != nil {
		if strings.Contains(err.Error(), "File exists") {
			return nil, errIndexTaken // by another test of this process
		}
		return nil, err
	}
	// The veth's name in the test's namespace is the claim of index i.
	if err := run("ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", h.Name); err != nil {
		_ = run("ip", "netns", "del", h.Name)
		if strings.Contains(err.Error(), "File exists") {
			return nil, errIndexTaken
		}
		return nil, err
	}
	steps := [][]string{
		{"ip", "addr", "add", h.Gateway + "/30", "dev", link},
		{"ip", "link", "set", link, "up"},
		{"ip", "-n", h.Name, "addr", "add", h.Addr + "/30", "dev", "eth0"},
		{"ip", "-n", h.Name, "link", "set", "eth0", "up"},
		{"ip", "-n", h.Name, "link", "set", "lo", "up"},
		{"ip", "-n", h.Name, "route", "add", "default", "via", h.Gateway},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			_ = run("ip", "netns", "del", h.Name) // takes the veth pair with it
			return nil, err
		}
	}
	return h, nil
}

// removeStaleHosts deletes the namespaces of ours whose test process is
// gone, and with each its veth pair.
func removeStaleHosts(t testing.TB) {
	t.Helper()
	names, _ := filepath.Glob("/run/netns/" + netnsPrefix + "*")
	for _, path := range names {
		name := filepath.Base(path)
		i := strings.LastIndex(name, "-p")
		if i < 0 {
			continue
		}
		pid, err := strconv.Atoi(name[i+2:])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // not ours, or its process lives
		}
		if err := run("ip", "netns", "del", name); err != nil {
			t.Logf("stale namespace %s (process %d gone): %v", name, pid, err)
		}
	}
}

// Cut drops every packet on the Host's link, both ways, until Heal.
//
// The drop is an iptables rule in the Host's namespace on its eth0, in
// and out: packets leave and vanish, and none arrive. Nothing tells
// either end: no reset, no ICMP error, the link stays up. Connections
// stay open, writes are buffered and retransmitted, reads and new
// connections hang until a timeout or a keepalive gives up, as on a
// network that lost its route (TestHost_CutAndHeal: a connection attempt
// times out, it is not refused). Setting the link down would fail sends
// at once with "network unreachable", which a process can tell; netem's
// 100% loss would do as well as DROP, but not every kernel has netem.
// After Heal, connections whose retransmissions were still going resume,
// at their next retransmission: seconds after a long cut, as the
// retransmission timeout doubles each time.
func (h *Host) Cut() error { return h.drop() }

// CutPort drops, until Heal, the packets of the Host's connections to TCP
// port port of the other end (etcd's or NATS's), both ways, as Cut does
// for all.
func (h *Host) CutPort(port int) error {
	return h.drop("-p", "tcp", "--dport", strconv.Itoa(port))
}

// Heal removes every drop of Cut and CutPort.
func (h *Host) Heal() error {
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		if err := h.iptables("-F", chain); err != nil {
			return err
		}
	}
	return nil
}

// drop adds a rule dropping what matches on eth0, out (as given) and in
// (the ports reversed).
func (h *Host) drop(match ...string) error {
	in := make([]string, len(match))
	for i, m := range match {
		in[i] = strings.Replace(m, "--dport", "--sport", 1)
	}
	if err := h.iptables(append(append([]string{"-A", "OUTPUT", "-o", "eth0"}, match...), "-j", "DROP")...); err != nil {
		return err
	}
	return h.iptables(append(append([]string{"-A", "INPUT", "-i", "eth0"}, in...), "-j", "DROP")...)
}

func (h *Host) iptables(args ...string) error {
	return run("ip", append([]string{"netns", "exec", h.Name, "iptables", "-w", "5"}, args...)...)
}

// StartProcessIn is StartProcess with the process in host's namespace. ip
// netns exec execs bin, so the Process's PID is bin's own.
func StartProcessIn(t testing.TB, host *Host, bin, name string, args ...string) *Process {
	t.Helper()
	return StartProcess(t, "ip", name, append([]string{"netns", "exec", host.Name, bin}, args...)...)
}

// run runs a command; its error holds the command and what it printed.
func run(name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
