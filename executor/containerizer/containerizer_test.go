package containerizer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"go.uber.org/zap/zaptest"

	"github.com/aionsched/aion/executor/containerizer"
	"github.com/aionsched/aion/executor/containerizer/containertest"
	"github.com/aionsched/aion/jobspec"
)

func TestCommand_MapsJobsToEntrypointAndCmd(t *testing.T) {
	tests := []struct {
		name           string
		job            jobspec.Job
		runArgs        []string
		wantEntrypoint []string
		wantCmd        []string
	}{
		{
			name:           "command runs in /bin/sh, not the image's entrypoint",
			job:            jobspec.Job{Name: "j", Command: "echo $1", Container: &jobspec.Container{}},
			runArgs:        []string{"a"},
			wantEntrypoint: []string{"/bin/sh"},
			wantCmd:        []string{"-c", "echo $1", "j", "a"},
		},
		{
			name:           "an entrypoint wraps the shell",
			job:            jobspec.Job{Name: "j", Command: "pg_dump db", Container: &jobspec.Container{Entrypoint: []string{"/entry.sh"}}},
			wantEntrypoint: []string{"/entry.sh"},
			wantCmd:        []string{"/bin/sh", "-c", "pg_dump db", "j"},
		},
		{
			name:    "args are the command of the image's entrypoint",
			job:     jobspec.Job{Name: "j", Args: []string{"report", "--daily"}, Container: &jobspec.Container{}},
			wantCmd: []string{"report", "--daily"},
		},
		{
			name:           "a manual run's arguments replace args[1:]",
			job:            jobspec.Job{Name: "j", Args: []string{"report", "--daily"}, Container: &jobspec.Container{Entrypoint: []string{"/app"}}},
			runArgs:        []string{"--weekly"},
			wantEntrypoint: []string{"/app"},
			wantCmd:        []string{"report", "--weekly"},
		},
		{
			name:    "neither: the image's own command",
			job:     jobspec.Job{Name: "j", Container: &jobspec.Container{}},
			wantCmd: nil,
		},
		{
			name:    "neither, with a manual run's arguments",
			job:     jobspec.Job{Name: "j", Container: &jobspec.Container{}},
			runArgs: []string{"x"},
			wantCmd: []string{"x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entrypoint, cmd := containerizer.Command(&tt.job, tt.runArgs)
			if !slices.Equal(entrypoint, tt.wantEntrypoint) || !slices.Equal(cmd, tt.wantCmd) {
				t.Errorf("got entrypoint %q cmd %q, want %q %q", entrypoint, cmd, tt.wantEntrypoint, tt.wantCmd)
			}
		})
	}
}

func TestSpecFor_LimitsUserAndWorkdir(t *testing.T) {
	job := &jobspec.Job{
		Name: "j", Command: "true", Workdir: "/work", User: "backup", Timeout: jobspec.Duration(time.Minute),
		Resources: jobspec.Resources{CPUs: 0.5, Memory: 64 << 20},
		Container: &jobspec.Container{Image: "img", Pull: jobspec.PullNever, Volumes: []string{"/a:/b:ro"}, Network: "none"},
	}
	s := containerizer.SpecFor(job, nil, []string{"A=1"})
	if s.NanoCPUs != 5e8 || s.Memory != 64<<20 || s.User != "backup" || s.WorkingDir != "/work" ||
		s.Network != "none" || !slices.Equal(s.Binds, []string{"/a:/b:ro"}) || s.Timeout != time.Minute || s.Pull != jobspec.PullNever {
		t.Errorf("spec = %+v", s)
	}
	job.Container.User = "1000:1000"
	if s := containerizer.SpecFor(job, nil, nil); s.User != "1000:1000" {
		t.Errorf("user = %q, want container.user to win over the job's", s.User)
	}
}

func connect(t *testing.T) *containerizer.Engine {
	t.Helper()
	containertest.Client(t) // skips without an engine
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	e, err := containerizer.Connect(ctx, zaptest.NewLogger(t), containerizer.WithPullTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func uniqueNode(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	node := "ctest-" + hex.EncodeToString(b)
	containertest.RemoveContainersAtEnd(t, node)
	return node
}

func TestEngine_PullPolicies(t *testing.T) {
	e := connect(t)
	img := containertest.HelperImage(t)
	node := uniqueNode(t)
	run := func(image string, pull jobspec.PullPolicy) (containerizer.Result, string, error) {
		var out bytes.Buffer
		s := containerizer.Spec{Image: image, Pull: pull, Cmd: []string{"/helper", "echo", "ran"},
			Labels: containerizer.Labels("j@x", "j", 1, node)}
		res, err := e.Run(t.Context(), s, &out)
		if err := e.Remove(context.Background(), res.ContainerID); err != nil {
			t.Error(err)
		}
		return res, out.String(), err
	}

	if _, out, err := run(img, jobspec.PullMissing); err != nil || out != "ran\n" {
		t.Errorf("present image, pull missing: output %q, %v; want it run without a pull", out, err)
	}
	_, _, err := run("aion-test-absent:never", jobspec.PullNever)
	var imgErr *containerizer.ImageError
	if !errors.As(err, &imgErr) || err.Error() != `image "aion-test-absent:never" not found locally and pull is never` {
		t.Errorf("absent image, pull never: %v", err)
	}
	// No registry answers here: the pull fails, clearly and at once.
	started := time.Now()
	_, _, err = run("127.0.0.1:1/aion-test-absent:always", jobspec.PullAlways)
	if !errors.As(err, &imgErr) || !strings.Contains(err.Error(), `pull image "127.0.0.1:1/aion-test-absent:always" (pull: always)`) {
		t.Errorf("unreachable registry, pull always: %v", err)
	}
	if took := time.Since(started); took > 15*time.Second {
		t.Errorf("failed pull took %s", took)
	}
}

func TestEngine_RunReportsExitCodeAndOutput(t *testing.T) {
	e := connect(t)
	img := containertest.HelperImage(t)
	var out bytes.Buffer
	s := containerizer.Spec{Image: img, Pull: jobspec.PullNever,
		Entrypoint: []string{"/bin/sh"}, Cmd: []string{"-c", "echo one $X; err two; echo three; exit 7", "j"},
		Env: []string{"X=1"}, Labels: containerizer.Labels("j@x", "j", 1, uniqueNode(t))}
	res, err := e.Run(t.Context(), s, &out)
	defer e.Remove(context.Background(), res.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 7 || res.OOMKilled || res.TimedOut || res.Stopped {
		t.Errorf("result %+v, want exit 7", res)
	}
	// The engine reads stdout and stderr through two pipes, so each is in
	// order but not the two relative to each other.
	var stdout []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if l != "two" {
			stdout = append(stdout, l)
		}
	}
	if want := []string{"one 1", "three"}; !slices.Equal(stdout, want) || !strings.Contains(out.String(), "two\n") {
		t.Errorf("output %q, want stdout %q in order and stderr %q", out.String(), want, "two")
	}
}

// TestEngine_RemoveLeftoversRemovesOnlyItsNodes starts containers for two
// nodes, as dead executors would leave them: the reconcile of one node
// kills and removes its own and leaves the other's alone.
func TestEngine_RemoveLeftoversRemovesOnlyItsNodes(t *testing.T) {
	e := connect(t)
	img := containertest.HelperImage(t)
	cli := containertest.Client(t)
	mine, other := uniqueNode(t), uniqueNode(t)
	for _, node := range []string{mine, mine, other} {
		c, err := cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{Config: &container.Config{Image: img, Cmd: []string{"/helper", "sleep", "1m"},
			Labels: containerizer.Labels("j@x", "j", 1, node)}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.ContainerStart(t.Context(), c.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := e.RemoveLeftovers(t.Context(), mine, nil)
	if err != nil || len(removed) != 2 || removed[0].Fire != "j@x" || removed[0].State != "running" {
		t.Errorf("removed %+v, %v; want the two running containers of %s", removed, err, mine)
	}
	if left := containertest.Containers(t, mine); len(left) != 0 {
		t.Errorf("%d containers of %s left", len(left), mine)
	}
	if left := containertest.Containers(t, other); len(left) != 1 {
		t.Errorf("%d containers of the other node, want its 1 untouched", len(left))
	}
}
