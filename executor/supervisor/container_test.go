package supervisor_test

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/aionsched/aion/executor/containerizer/containertest"
	"github.com/aionsched/aion/executor/supervisor"
)

// A container's fence: the supervisor starts nothing, and kills the
// container through its engine once its executor is silent for the
// fence; a fence the executor acknowledged (its container's end recorded)
// is released, and its container left alone.
func TestSupervisor_FencesContainers(t *testing.T) {
	t.Parallel()
	cli := containertest.Client(t)
	img := containertest.HelperImage(t)
	s, _, beating := open(t, 500*time.Millisecond)
	fence := func(name string) (*supervisor.Run, string) {
		created, err := cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{Config: &container.Config{Image: img, Cmd: []string{"/helper", "sleep", "1m"}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = cli.ContainerRemove(t.Context(), created.ID, client.ContainerRemoveOptions{Force: true})
		})
		if _, err := cli.ContainerStart(t.Context(), created.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		r, err := s.Start(name, supervisor.Spec{Fence: 500 * time.Millisecond, Container: &supervisor.Container{
			ID: created.ID, Host: cli.DaemonHost(), APIVersion: cli.ClientVersion()}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r, created.ID
	}
	running := func(id string) bool {
		info, err := cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info.Container.State.Running
	}
	released, releasedID := fence("released")
	killed, killedID := fence("killed")
	time.Sleep(time.Second) // twice the fence, beaten
	if !running(releasedID) || !running(killedID) {
		t.Fatal("a beaten fence killed its container")
	}
	if err := s.Ack(released.ID()); err != nil {
		t.Fatal(err)
	}
	if st := ended(t, released); st.Ending != supervisor.Released {
		t.Errorf("acknowledged fence: %+v; want released", st)
	}
	beating.Store(false)
	if st := ended(t, killed); st.Ending != supervisor.Fenced {
		t.Errorf("fence of a silent executor: %+v; want fenced", st)
	}
	if running(killedID) {
		t.Error("the fenced container still runs")
	}
	if !running(releasedID) {
		t.Error("the container of a released fence was killed")
	}
}
