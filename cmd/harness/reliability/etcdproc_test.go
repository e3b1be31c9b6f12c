package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/clustertest"
)

// etcdProcs is a cluster of real etcd server processes (the etcd binary
// on PATH), each on its own data directory and free loopback ports, which
// a test can stop (SIGSTOP) and continue. Unlike the embedded members of
// etcdCluster, a stopped process stalls as a hung host does: its sockets
// stay open and nothing answers.
type etcdProcs struct {
	members []*etcdProc
	clients []string // client URLs, by member
}

// etcdProc is one member's process.
type etcdProc struct {
	name string
	log  string // its output
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
}

// startEtcdProcs starts n members of one new cluster and waits until each
// answers a Status call. It skips the test when there is no etcd binary.
// The processes are continued and killed when the test ends, however it
// ends.
func startEtcdProcs(t *testing.T, n int) *etcdProcs {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("needs the etcd server binary (etcd) on PATH, e.g. Debian's etcd-server package; .ci/run installs it where it can")
	}
	ep := &etcdProcs{}
	var peers, peerURLs []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		client, peer := "http://"+clustertest.FreeAddr(t), "http://"+clustertest.FreeAddr(t)
		ep.clients = append(ep.clients, client)
		peerURLs = append(peerURLs, peer)
		peers = append(peers, name+"="+peer)
	}
	dir := t.TempDir()
	t.Cleanup(func() { ep.kill(t) }) // those started, whatever stops the test
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		m := &etcdProc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
		out, err := os.Create(m.log)
		if err != nil {
			t.Fatal(err)
		}
		m.cmd = exec.Command(bin, "--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", ep.clients[i], "--advertise-client-urls", ep.clients[i],
			"--listen-peer-urls", peerURLs[i], "--initial-advertise-peer-urls", peerURLs[i],
			"--initial-cluster", strings.Join(peers, ","), "--initial-cluster-token", "aion-test",
			"--initial-cluster-state", "new", "--max-txn-ops", "10000", "--logger", "zap", "--log-outputs", "stderr")
		m.cmd.Stdout, m.cmd.Stderr = out, out
		err = m.cmd.Start()
		_ = out.Close() // the process has its own copy
		if err != nil {
			t.Fatalf("start etcd member %s: %v", name, err)
		}
		go func() { _ = m.cmd.Wait(); close(m.done) }()
		ep.members = append(ep.members, m)
	}
	ep.waitHealthy(t, 30*time.Second)
	return ep
}

// kill continues and kills every member, waits for them to be gone, and
// shows the end of each one's output if the test failed.
func (ep *etcdProcs) kill(t *testing.T) {
	for _, m := range ep.members {
		_ = m.cmd.Process.Signal(syscall.SIGCONT)
		_ = m.cmd.Process.Kill()
		<-m.done
		if t.Failed() {
			data, _ := os.ReadFile(m.log)
			t.Logf("--- etcd %s output (end):\n%s", m.name, data[max(len(data)-3000, 0):])
		}
	}
}

// waitHealthy waits until every member answers a Status call.
func (ep *etcdProcs) waitHealthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	cli := ep.client(t)
	clustertest.WaitFor(t, timeout, "the etcd members to answer", func() bool {
		for _, url := range ep.clients {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cli.Status(ctx, url)
			cancel()
			if err != nil {
				return false
			}
		}
		return true
	})
}

// client is a client of every member, closed when the test ends.
func (ep *etcdProcs) client(t *testing.T) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: ep.clients, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// leader is the index of the member that leads the raft group, as every
// member that answers Status says; -1 when none answered, they disagree,
// or the leader did not answer.
func (ep *etcdProcs) leader(cli *clientv3.Client) int {
	ids := make([]uint64, len(ep.clients))
	leaders := map[uint64]bool{}
	for i, url := range ep.clients {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := cli.Status(ctx, url)
		cancel()
		if err == nil {
			ids[i] = st.Header.MemberId
			leaders[st.Leader] = true
		}
	}
	if len(leaders) != 1 {
		return -1
	}
	for i, id := range ids {
		if id != 0 && leaders[id] {
			return i
		}
	}
	return -1
}

// signal sends sig to member i.
func (ep *etcdProcs) signal(t *testing.T, i int, sig syscall.Signal) {
	t.Helper()
	if err := ep.members[i].cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to etcd %s: %v", sig, ep.members[i].name, err)
	}
}

// memberName is member i's name, or "none" for -1.
func (ep *etcdProcs) memberName(i int) string {
	if i < 0 {
		return "none"
	}
	return ep.members[i].name
}
