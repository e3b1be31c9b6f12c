package executor_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/executor/containerizer/containertest"
	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/scheduler/store"
)

// dockerNode returns a node ID no other test uses: containers are found by
// their node label, and packages test in parallel on the one engine.
func dockerNode(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	node := "dk-" + hex.EncodeToString(b)
	containertest.RemoveContainersAtEnd(t, node)
	return node
}

// startDockerExecutor runs an executor in the given Docker mode until the
// test ends and returns its registration once it is there.
func startDockerExecutor(t *testing.T, c *clustertest.Cluster, node string, mode executor.DockerMode, mounts ...string) store.Node {
	t.Helper()
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Slots, cfg.Docker = node, 4, mode
	cfg.Policy.Mounts = mounts // host paths its container jobs may mount (none by default)
	cfg.OutputDir = t.TempDir()
	cfg.Grace = time.Second
	return c.StartExecutorWith(t, cfg)
}

// waitContainerRunning waits for node's one container to be started.
func waitContainerRunning(t *testing.T, node string) {
	t.Helper()
	clustertest.WaitFor(t, 10*time.Second, "the container of "+node+" to run", func() bool {
		list := containertest.Containers(t, node)
		return len(list) == 1 && list[0].State == "running"
	})
}

// applyLong applies the manual container job "long" of the image img,
// running command.
func applyLong(t *testing.T, c *clustertest.Cluster, img, command string) {
	t.Helper()
	c.Apply(t, fmt.Sprintf("name: long\nschedule: manual\ncommand: %s\ncontainer: {image: %s, pull: never}\n", command, img))
}

func waitNoContainers(t *testing.T, node string) {
	t.Helper()
	clustertest.WaitFor(t, 10*time.Second, "the containers of "+node+" to be removed", func() bool {
		return len(containertest.Containers(t, node)) == 0
	})
}

func exitCode(f store.Fire) string {
	if f.ExitCode == nil {
		return "none"
	}
	return fmt.Sprint(*f.ExitCode)
}

// TestDocker_NodeAdvertisesDockerOnlyWithAnEngine: an executor that finds
// the engine labels its node; with Docker off, or no engine answering,
// the node has no such label and still runs host jobs; with Docker on and
// no engine, the executor does not start.
func TestDocker_NodeAdvertisesDockerOnlyWithAnEngine(t *testing.T) {
	containertest.Client(t)
	c := clustertest.Start(t)
	if n := startDockerExecutor(t, c, dockerNode(t), executor.DockerAuto); n.Labels[store.DockerLabel] != "true" || n.Labels[store.DockerVersionLabel] == "" {
		t.Errorf("auto with an engine: labels %v, want %s=true and the engine version", n.Labels, store.DockerLabel)
	}
	if n := startDockerExecutor(t, c, dockerNode(t), executor.DockerOff); n.Labels[store.DockerLabel] != "" {
		t.Errorf("off: labels %v, want no %s", n.Labels, store.DockerLabel)
	}

	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1") // nothing listens there
	node := dockerNode(t)
	if n := startDockerExecutor(t, c, node, executor.DockerAuto); n.Labels[store.DockerLabel] != "" {
		t.Errorf("auto without an engine: labels %v, want no %s", n.Labels, store.DockerLabel)
	}
	c.Apply(t, "name: host\nschedule: manual\ncommand: echo on the host\n")
	if f := c.RunFire(t, "host", node, nil); f.State != store.FireSucceeded {
		t.Errorf("host job on a node without Docker: %s (%s)", f.State, f.Reason)
	}
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Docker, cfg.OutputDir = dockerNode(t), executor.DockerOn, t.TempDir()
	err := executor.New(cfg, c.Etcd, c.NATS, c.Log).Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "docker mode is on, but no engine answers") {
		t.Errorf("on without an engine: Run = %v, want a refusal", err)
	}
}

// TestDocker_ExitCodesEnvVolumesUserAndOutput runs container jobs through
// the whole protocol: the run sees the job's env, the run's overrides and
// the AION_* variables but not the executor's environment, writes to a
// bind-mounted directory as the job's user, and its output lands in the
// record and the output file like a host run's. The container is removed.
func TestDocker_ExitCodesEnvVolumesUserAndOutput(t *testing.T) {
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	data := t.TempDir()
	if err := os.Chmod(data, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEAKED_FROM_EXECUTOR", "yes")
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: greet
    schedule: manual
    command: echo hello $GREETING $1 from $0; err to-stderr; env AION_FIRE_ID AION_JOB AION_ATTEMPT AION_NODE LEAKED_FROM_EXECUTOR; pwd; id; write /data/out.txt $AION_FIRE_ID
    workdir: /tmp
    env: {GREETING: world}
    container:
      image: %[1]s
      pull: never
      network: none
      user: "65534:65534"
      volumes: ["%[2]s:/data:rw"]
  - name: fail
    schedule: manual
    args: ["/helper", "exit", "3"]
    container: {image: %[1]s, pull: never}
  - name: image-default
    schedule: manual
    container: {image: %[1]s, pull: never}
`, img, data))
	startDockerExecutor(t, c, node, executor.DockerOn, data)

	f := c.RunFire(t, "greet", node, []string{"arg1"})
	if f.State != store.FireSucceeded || exitCode(f) != "0" {
		t.Fatalf("greet: %s exit %s (%s)\n%s", f.State, exitCode(f), f.Reason, f.OutputTail)
	}
	for _, want := range []string{
		"hello world arg1 from greet\n", "to-stderr\n",
		"AION_FIRE_ID=" + f.ID.String() + "\n", "AION_JOB=greet\n", "AION_ATTEMPT=1\n", "AION_NODE=" + node + "\n",
		"LEAKED_FROM_EXECUTOR=\n", "/tmp\n", "uid=65534 gid=65534\n",
	} {
		if !strings.Contains(f.OutputTail, want) {
			t.Errorf("output lacks %q:\n%s", want, f.OutputTail)
		}
	}
	if full, err := os.ReadFile(f.OutputPath); err != nil || string(full) != f.OutputTail {
		t.Errorf("full output at %s = %q, %v; want the same as the tail", f.OutputPath, full, err)
	}
	if written, err := os.ReadFile(filepath.Join(data, "out.txt")); err != nil || string(written) != f.ID.String()+"\n" {
		t.Errorf("file written through the volume: %q, %v", written, err)
	}

	if f := c.RunFire(t, "fail", node, nil); f.State != store.FireFailed || exitCode(f) != "3" || f.Reason != "exit status 3" {
		t.Errorf("fail: %s exit %s (%s), want failed with exit status 3", f.State, exitCode(f), f.Reason)
	}
	if f := c.RunFire(t, "image-default", node, nil); f.State != store.FireSucceeded || f.OutputTail != "the image's own command\n" {
		t.Errorf("image-default: %s (%s) output %q, want the image's CMD run", f.State, f.Reason, f.OutputTail)
	}
	waitNoContainers(t, node)
}

// TestDocker_ContainersRunWithoutPrivileges: a container, even as root, has
// no capabilities but those its job's cap_add gives back and the node
// allows, and cannot gain privileges; a capability the node does not allow
// is refused, with the reason, before any container is made.
func TestDocker_ContainersRunWithoutPrivileges(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: as-root
    schedule: manual
    args: ["/helper", "status", "CapPrm", "CapEff", "CapBnd", "NoNewPrivs"]
    container: {image: %[1]s, pull: never, user: "0:0"}
  - name: binds-low-ports
    schedule: manual
    args: ["/helper", "status", "CapEff", "CapBnd", "NoNewPrivs"]
    container: {image: %[1]s, pull: never, user: "0:0", cap_add: [NET_BIND_SERVICE]}
  - name: wants-admin
    schedule: manual
    args: ["/helper", "status", "CapEff"]
    container: {image: %[1]s, pull: never, cap_add: [NET_BIND_SERVICE, SYS_ADMIN]}
`, img))
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Slots, cfg.Docker = node, 2, executor.DockerOn
	cfg.Policy.Capabilities = []string{"NET_BIND_SERVICE"}
	cfg.OutputDir = t.TempDir()
	c.StartExecutorWith(t, cfg)

	none := "CapPrm:0000000000000000\nCapEff:0000000000000000\nCapBnd:0000000000000000\nNoNewPrivs:1\n"
	if f := c.RunFire(t, "as-root", node, nil); f.State != store.FireSucceeded || f.OutputTail != none {
		t.Errorf("as-root: %s (%s) output %q, want %q", f.State, f.Reason, f.OutputTail, none)
	}
	bind := "CapEff:0000000000000400\nCapBnd:0000000000000400\nNoNewPrivs:1\n" // bit 10: CAP_NET_BIND_SERVICE
	if f := c.RunFire(t, "binds-low-ports", node, nil); f.State != store.FireSucceeded || f.OutputTail != bind {
		t.Errorf("binds-low-ports: %s (%s) output %q, want %q", f.State, f.Reason, f.OutputTail, bind)
	}
	f := c.RunFire(t, "wants-admin", node, nil)
	if want := "capability SYS_ADMIN is not allowed (allows: NET_BIND_SERVICE)"; f.State != store.FireFailed || !strings.Contains(f.Reason, want) || f.OutputTail != "" {
		t.Errorf("wants-admin: %s (%s) output %q, want failed: %s", f.State, f.Reason, f.OutputTail, want)
	}
	waitNoContainers(t, node)
}

// TestDocker_VolumesOutsideThePolicyAreRefused: the executor checks a
// dispatched container job's volumes itself, with symbolic links
// resolved, whatever the leader decided: a path outside the allowed
// prefix, a link under the prefix leading out of it, and the Docker socket
// are refused with the reason and no container is made; a path inside
// runs.
func TestDocker_VolumesOutsideThePolicyAreRefused(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	allowed, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	realOutside, err := filepath.EvalSymlinks(outside)
	if err != nil {
		t.Fatal(err)
	}
	c.Apply(t, fmt.Sprintf(`
jobs:
  - name: inside
    schedule: manual
    command: write /data/ok.txt yes
    container: {image: %[1]s, pull: never, volumes: ["%[2]s:/data"]}
  - name: outside
    schedule: manual
    command: write /data/bad.txt no
    container: {image: %[1]s, pull: never, volumes: ["%[3]s:/data"]}
  - name: through-a-link
    schedule: manual
    command: write /data/bad.txt no
    container: {image: %[1]s, pull: never, volumes: ["%[2]s/escape:/data"]}
  - name: docker-socket
    schedule: manual
    command: echo no
    container: {image: %[1]s, pull: never, volumes: ["/var/run/docker.sock:/var/run/docker.sock"]}
`, img, allowed, outside))
	startDockerExecutor(t, c, node, executor.DockerOn, allowed)

	if f := c.RunFire(t, "inside", node, nil); f.State != store.FireSucceeded {
		t.Errorf("inside: %s (%s), want succeeded", f.State, f.Reason)
	}
	if data, err := os.ReadFile(filepath.Join(allowed, "ok.txt")); err != nil || string(data) != "yes\n" {
		t.Errorf("file written through the allowed volume: %q, %v", data, err)
	}
	for job, want := range map[string]string{
		"outside":        fmt.Sprintf(`host path %q is not allowed (allows: %s)`, outside, allowed),
		"through-a-link": fmt.Sprintf(`(symbolic links resolved): host path %q is not allowed`, realOutside),
		"docker-socket":  "gives the container the Docker socket",
	} {
		f := c.RunFire(t, job, node, nil)
		if f.State != store.FireFailed || !strings.Contains(f.Reason, "refused by the node's policy") || !strings.Contains(f.Reason, want) {
			t.Errorf("%s: %s (%s), want failed, refused by the node's policy: ...%s", job, f.State, f.Reason, want)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "bad.txt")); !os.IsNotExist(err) {
		t.Errorf("a refused run wrote outside the allowed path (stat: %v)", err)
	}
	waitNoContainers(t, node)
}

// TestDocker_TimeoutStopsThenKills: a run that ignores SIGTERM outlives its
// timeout by the grace period, then is killed and recorded timed out.
func TestDocker_TimeoutStopsThenKills(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	c.Apply(t, fmt.Sprintf(`
name: stubborn
schedule: manual
command: ignore-term; echo started; sleep 1m; echo never
timeout: 1s
container: {image: %s, pull: never}
`, img))
	startDockerExecutor(t, c, node, executor.DockerOn) // grace 1s

	f := c.RunFire(t, "stubborn", node, nil)
	took := f.EndedAt.Sub(f.StartedAt)
	if f.State != store.FireTimedOut || exitCode(f) != "137" || f.Reason != "killed after the 1s timeout" {
		t.Errorf("stubborn: %s exit %s (%s), want timed_out, killed (137)", f.State, exitCode(f), f.Reason)
	}
	if took < 2*time.Second || took > 10*time.Second {
		t.Errorf("took %s, want the 1s timeout plus the 1s grace before SIGKILL", took)
	}
	if f.OutputTail != "started\n" {
		t.Errorf("output %q", f.OutputTail)
	}
	waitNoContainers(t, node)
}

// TestDocker_MemoryLimitKillIsReportedAsSuch: a run over resources.memory
// is killed by the kernel and recorded as out of memory.
func TestDocker_MemoryLimitKillIsReportedAsSuch(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	if res, err := containertest.Client(t).Info(t.Context(), client.InfoOptions{}); err != nil || !res.Info.MemoryLimit {
		t.Skipf("the Docker engine cannot limit memory (info: %v)", err)
	}
	c := clustertest.Start(t)
	node := dockerNode(t)
	c.Apply(t, fmt.Sprintf(`
name: greedy
schedule: manual
args: ["/helper", "alloc", "512"]
resources: {memory: 32Mi, cpus: 0.5}
timeout: 30s
container: {image: %s, pull: never}
`, img))
	startDockerExecutor(t, c, node, executor.DockerOn)

	f := c.RunFire(t, "greedy", node, nil)
	if f.State != store.FireFailed || exitCode(f) != "137" || f.Reason != "killed: out of memory (limit 32MiB)" {
		t.Errorf("greedy: %s exit %s (%s), want failed: killed: out of memory (limit 32MiB), exit 137", f.State, exitCode(f), f.Reason)
	}
	waitNoContainers(t, node)
}

// TestDocker_OutputStreamsAndKillCancels reads a running container's output
// over NATS as aion logs -f does, then kills the run on request.
func TestDocker_OutputStreamsAndKillCancels(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	applyLong(t, c, img, "echo first; sleep 1m; echo never")
	startDockerExecutor(t, c, node, executor.DockerOn)

	id := c.StartFire(t, "long", node, nil)
	var chunk store.LogChunk
	clustertest.WaitFor(t, 10*time.Second, "the first line in the running container's output", func() bool {
		chunk = c.AskLog(t, node, store.LogRequest{Fire: id, Attempt: 1})
		return string(chunk.Data) == "first\n"
	})
	if f := c.MustFire(t, id); f.State != store.FireRunning {
		t.Fatalf("state %s while its output streams, want running", f.State)
	}
	if len(containertest.Containers(t, node)) != 1 {
		t.Error("want one container while it runs")
	}
	c.RecordKill(t, id, "killed by test")
	c.SendKillHint(t, node, id, 1)
	if f := c.WaitFinal(t, id, 10*time.Second); f.State != store.FireCancelled || f.Reason != "killed by test" || f.OutputTail != "first\n" || f.PID == 0 {
		t.Errorf("killed run: %s (%s) output %q PID %d, want cancelled, with the container's PID", f.State, f.Reason, f.OutputTail, f.PID)
	}
	waitNoContainers(t, node)
}

// TestDocker_MissingImageFailsClearly: with pull never, or a registry that
// cannot be reached, the run fails at once and says why.
func TestDocker_MissingImageFailsClearly(t *testing.T) {
	t.Parallel()
	containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	c.Apply(t, `
jobs:
  - name: never
    schedule: manual
    command: echo hi
    container: {image: "aion-test-absent:1", pull: never}
  - name: always
    schedule: manual
    command: echo hi
    container: {image: "127.0.0.1:1/aion-test-absent:1", pull: always}
`)
	startDockerExecutor(t, c, node, executor.DockerOn)
	if f := c.RunFire(t, "never", node, nil); f.State != store.FireFailed || f.Reason != `image "aion-test-absent:1" not found locally and pull is never` {
		t.Errorf("pull never: %s (%s)", f.State, f.Reason)
	}
	if f := c.RunFire(t, "always", node, nil); f.State != store.FireFailed || !strings.HasPrefix(f.Reason, `pull image "127.0.0.1:1/aion-test-absent:1" (pull: always): `) {
		t.Errorf("pull always, no registry: %s (%s)", f.State, f.Reason)
	}
}

// TestDocker_LostLeaseStopsContainers: an executor that loses its
// registration kills its container runs like its host runs, and registers
// again.
func TestDocker_LostLeaseStopsContainers(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	applyLong(t, c, img, "sleep 1m")
	startDockerExecutor(t, c, node, executor.DockerOn)
	id := c.StartFire(t, "long", node, nil)
	waitContainerRunning(t, node)
	c.RevokeRegistration(t, node)
	if f := c.WaitFinal(t, id, 10*time.Second); f.State != store.FireLost || !strings.Contains(f.Reason, "registration") {
		t.Errorf("run of a node that lost its lease: %s (%s), want lost for the lost registration", f.State, f.Reason)
	}
	waitNoContainers(t, node)
	c.WaitRegistered(t, node)
}

// startDockerProcess runs an aion executor process with Docker on for
// node, its output under dir, until the test ends, and waits for its
// registration.
func startDockerProcess(t *testing.T, c *clustertest.Cluster, bin, node, dir string) *clustertest.Process {
	t.Helper()
	x := clustertest.StartProcess(t, bin, node, "executor", "--node-id", node, "--docker", "on",
		"--output-dir", dir, "--grace", "1s", "--etcd", c.EtcdURL, "--nats", c.NATSURL)
	if reg := c.WaitRegistered(t, node); reg.Labels[store.DockerLabel] != "true" {
		t.Fatalf("labels %v; want the node to have Docker", reg.Labels)
	}
	return x
}

// TestDocker_RestartedExecutorAdoptsItsContainers stops an executor
// process while its container runs, by SIGKILL (a crash) or by SIGUSR2
// (a hand-off, to upgrade it): the container outlives it, fenced by the
// node's supervisor, and the executor started again at once on the node
// adopts it, follows it to its end and records the run succeeded, with
// its whole output (what it printed before and after the restart).
func TestDocker_RestartedExecutorAdoptsItsContainers(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (builds the aion binary, SIGKILLs it)")
	t.Parallel()
	img := containertest.HelperImage(t)
	bin := clustertest.BuildAion(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGUSR2} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			c := clustertest.Start(t)
			node := dockerNode(t)
			applyLong(t, c, img, "echo started; sleep 4s; echo done")
			x := startDockerProcess(t, c, bin, node, t.TempDir())
			id := c.StartFire(t, "long", node, nil)
			waitContainerRunning(t, node)
			x.Signal(sig)
			if !x.Wait(5 * time.Second) {
				t.Fatalf("the executor did not exit within 5 s of %s", sig)
			}
			x.Restart()
			restarted := time.Now()
			f := c.WaitFinal(t, id, 20*time.Second)
			t.Logf("the run ended %s after the executor's restart", time.Since(restarted).Round(time.Millisecond))
			if f.State != store.FireSucceeded || f.Attempt != 1 {
				t.Errorf("fire %s on attempt %d (%s); want succeeded on attempt 1: the restarted executor adopts the container", f.State, f.Attempt, f.Reason)
			}
			if !strings.Contains(f.OutputTail, "started") || !strings.Contains(f.OutputTail, "done") {
				t.Errorf("output tail %q; want what the container printed before and after the restart", f.OutputTail)
			}
			if f.PID == 0 {
				t.Error("no PID recorded for the adopted container")
			}
			waitNoContainers(t, node)
		})
	}
}

// TestDocker_RestartedExecutorWithoutItsSupervisorRemovesLeftovers
// SIGKILLs an executor and its node's supervisor while a container runs:
// nothing fences the container then, and the executor started again on
// the node removes it before taking work, and records the run lost,
// saying so.
func TestDocker_RestartedExecutorWithoutItsSupervisorRemovesLeftovers(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (builds the aion binary, SIGKILLs it)")
	t.Parallel()
	img := containertest.HelperImage(t)
	bin := clustertest.BuildAion(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	applyLong(t, c, img, "echo started; sleep 1m")
	dir := t.TempDir()
	x := startDockerProcess(t, c, bin, node, dir)
	id := c.StartFire(t, "long", node, nil)
	waitContainerRunning(t, node)
	x.Kill()
	killSupervisorOf(t, dir)
	if left := containertest.Containers(t, node); len(left) != 1 || left[0].State != "running" {
		t.Fatalf("after SIGKILL of the executor and its supervisor: %d containers, want the run's still running", len(left))
	}
	x.Restart()
	waitNoContainers(t, node)
	f := c.WaitFire(t, id, 10*time.Second, "the run to be recorded by the restarted executor", func(f store.Fire) bool { return f.State.Final() })
	if f.State != store.FireLost || !strings.Contains(f.Reason, "still running when executor PID") || !strings.Contains(f.Reason, "container ") {
		t.Errorf("fire %s (%s), want lost, its container killed by the executor that took over", f.State, f.Reason)
	}
}

// TestDocker_FenceKillsTheContainersOfAStoppedExecutor SIGSTOPs an
// executor process while its container runs: the node's supervisor hears
// no beat for the fence and kills the container, before the leader counts
// the run lost (which it does only after the executor's lease and the
// fence have passed), so no retry or next run can start beside it.
func TestDocker_FenceKillsTheContainersOfAStoppedExecutor(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (builds the aion binary, SIGSTOPs it)")
	t.Parallel()
	img := containertest.HelperImage(t)
	bin := clustertest.BuildAion(t)
	c := clustertest.Start(t)
	c.StartScheduler(t, "s1")
	node := dockerNode(t)
	applyLong(t, c, img, "sleep 1m")
	x := startDockerProcess(t, c, bin, node, t.TempDir())
	id := c.StartFire(t, "long", node, nil)
	waitContainerRunning(t, node)
	containerID := containertest.Containers(t, node)[0].ID
	x.Signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	f := c.WaitFinal(t, id, 30*time.Second)
	x.Signal(syscall.SIGCONT)
	if f.State != store.FireLost {
		t.Errorf("fire %s (%s); want lost: its executor was stopped past its lease", f.State, f.Reason)
	}
	info, err := containertest.Client(t).ContainerInspect(t.Context(), containerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect the run's container: %v", err)
	}
	state := info.Container.State
	finished, _ := time.Parse(time.RFC3339Nano, state.FinishedAt)
	t.Logf("executor stopped at %s; container killed %s later (exit %d); fire counted lost %s later",
		stoppedAt.Format(time.TimeOnly), finished.Sub(stoppedAt).Round(time.Millisecond), state.ExitCode, f.EndedAt.Sub(stoppedAt).Round(time.Millisecond))
	if state.Running || finished.IsZero() || !finished.Before(f.EndedAt) {
		t.Errorf("container running %v, finished at %s, fire lost at %s: the fence must kill the container before the run counts lost",
			state.Running, state.FinishedAt, f.EndedAt.Format(time.RFC3339Nano))
	}
}

// TestDocker_ContainerStopsWhenItsSupervisorDies: a container whose
// fence is gone (the node's supervisor SIGKILLed) is stopped, as a host
// run dies with its supervisor, and its run recorded lost, saying why.
func TestDocker_ContainerStopsWhenItsSupervisorDies(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	applyLong(t, c, img, "sleep 1m")
	cfg := executor.DefaultConfig()
	cfg.NodeID, cfg.Docker, cfg.OutputDir, cfg.Grace = node, executor.DockerOn, t.TempDir(), time.Second
	c.StartExecutorWith(t, cfg)
	id := c.StartFire(t, "long", node, nil)
	waitContainerRunning(t, node)
	killSupervisorOf(t, cfg.OutputDir)
	f := c.WaitFinal(t, id, 20*time.Second)
	if f.State != store.FireLost || !strings.Contains(f.Reason, "supervisor died") {
		t.Errorf("fire %s (%s); want lost: its supervisor died", f.State, f.Reason)
	}
	waitNoContainers(t, node)
}

// TestDocker_FencedContainerOfAnExecutorPausedWithinItsLease: an
// executor paused longer than its fence (1 s here) but not its lease
// finds, when it goes on, its container killed by the fence, and records
// the run lost with the fence's reason, not as a failure of the job.
func TestDocker_FencedContainerOfAnExecutorPausedWithinItsLease(t *testing.T) {
	clustertest.SkipShort(t, "fault scenario (builds the aion binary, SIGSTOPs it)")
	t.Parallel()
	img := containertest.HelperImage(t)
	bin := clustertest.BuildAion(t)
	c := clustertest.Start(t)
	node := dockerNode(t)
	applyLong(t, c, img, "sleep 1m")
	x := clustertest.StartProcess(t, bin, node, "executor", "--node-id", node, "--docker", "on", "--fence", "1s",
		"--output-dir", t.TempDir(), "--grace", "1s", "--etcd", c.EtcdURL, "--nats", c.NATSURL)
	c.WaitRegistered(t, node)
	id := c.StartFire(t, "long", node, nil)
	waitContainerRunning(t, node)
	x.Signal(syscall.SIGSTOP)
	time.Sleep(2500 * time.Millisecond) // past the fence, within the 5 s lease renewed every 1.7 s
	x.Signal(syscall.SIGCONT)
	f := c.WaitFinal(t, id, 20*time.Second)
	if f.State != store.FireLost || !strings.Contains(f.Reason, "gave no sign of life") {
		t.Errorf("fire %s (%s); want lost, with the fence's reason", f.State, f.Reason)
	}
	waitNoContainers(t, node)
}

// killSupervisorOf SIGKILLs the supervisor of the executor whose output
// directory is dir (found in /proc by its arguments).
func killSupervisorOf(t *testing.T, dir string) {
	t.Helper()
	runs := filepath.Join(dir, ".runs")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(cmdline), supervisor.ProcessName+"\x00"+runs+"\x00") {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill the supervisor %d: %v", pid, err)
		}
		return
	}
	t.Fatalf("no supervisor of %s found", runs)
}

// TestDocker_ContainerJobsGoOnlyToDockerNodes runs a container job through
// the scheduler with one node that has Docker and one that does not: every
// run goes to the Docker node. A container fire dispatched to the other
// anyway fails with a clear reason.
func TestDocker_ContainerJobsGoOnlyToDockerNodes(t *testing.T) {
	t.Parallel()
	img := containertest.HelperImage(t)
	c := clustertest.Start(t)
	withDocker, without := dockerNode(t), dockerNode(t)
	c.Apply(t, fmt.Sprintf(`
name: boxed
schedule: manual
concurrency: allow
args: ["/helper", "echo", "boxed"]
container: {image: %s, pull: never}
`, img))
	startDockerExecutor(t, c, without, executor.DockerOff)
	startDockerExecutor(t, c, withDocker, executor.DockerOn)
	// Before any scheduler runs: a leader's reconcile would move this fire,
	// written behind its back, to the Docker node before it is claimed.
	if f := c.RunFire(t, "boxed", without, nil); f.State != store.FireFailed || !strings.Contains(f.Reason, "need an executor with a Docker engine") {
		t.Errorf("container fire on a node without Docker: %s (%s)", f.State, f.Reason)
	}
	c.StartScheduler(t, "s1")
	var ids []store.FireID
	for i := range 6 {
		ids = append(ids, c.RequestRun(t, "boxed", store.Request{At: time.Now().Add(time.Duration(i) * time.Millisecond), By: "test"}))
	}
	clustertest.WaitFor(t, 30*time.Second, "six runs to end", func() bool {
		ended := 0
		for _, f := range clustertest.Final(c.Fires(t, "boxed")) {
			if slices.Contains(ids, f.ID) {
				ended++
			}
		}
		return ended == len(ids)
	})
	for _, f := range c.Fires(t, "boxed") {
		if !slices.Contains(ids, f.ID) {
			continue
		}
		if f.Node != withDocker || f.State != store.FireSucceeded {
			t.Errorf("%s: %s on %s (%s), want succeeded on %s", f.ID, f.State, f.Node, f.Reason, withDocker)
		}
	}

}
