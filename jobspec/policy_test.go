package jobspec

import (
	"strings"
	"testing"
)

func TestNodePolicyUsers(t *testing.T) {
	asAion := NodePolicy{User: "aion", UID: "1000"}
	asRoot := NodePolicy{User: "root", UID: "0"}
	listed := NodePolicy{User: "aion", UID: "1000", RunAs: []string{"postgres", "backup:disk", "nobody"}}
	withRoot := NodePolicy{User: "aion", UID: "1000", RunAs: []string{"root"}}
	cases := []struct {
		name   string
		policy NodePolicy
		user   string
		denied string // "" when allowed, else part of the reason
	}{
		{"no user runs as the executor", asRoot, "", ""},
		{"own user by name", asAion, "aion", ""},
		{"own user by uid", asAion, "1000", ""},
		{"another user", asAion, "postgres", `user "postgres" is not allowed (allows: aion)`},
		{"own user with a group not listed", asAion, "aion:docker", `user "aion:docker" is not allowed`},
		{"root by a root executor, not listed", asRoot, "root", "allows: no user"},
		{"uid 0 by a root executor, not listed", asRoot, "0:0", `user "0:0" is not allowed`},
		{"root not listed", asAion, "root", `user "root" is not allowed (allows: aion)`},
		{"root listed", withRoot, "root", ""},
		{"listed user", listed, "postgres", ""},
		{"listed user with a group not listed", listed, "postgres:disk", "allows: aion, postgres, backup:disk, nobody"},
		{"listed user and group", listed, "backup:disk", ""},
		{"user of a listed user:group alone", listed, "backup", `user "backup" is not allowed`},
		{"old registration: default policy", NodePolicy{}, "aion", "allows: no user"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.Check(&Job{Name: "j", Command: "true", User: c.user})
			switch {
			case c.denied == "" && err != nil:
				t.Errorf("user %q: %v, want allowed", c.user, err)
			case c.denied != "" && (err == nil || !strings.Contains(err.Error(), c.denied)):
				t.Errorf("user %q: %v, want an error containing %q", c.user, err, c.denied)
			}
		})
	}
}

func TestNodePolicyContainers(t *testing.T) {
	open := NodePolicy{
		Mounts:   []string{"/srv/data", "/var/run/docker.sock", "/"},
		Networks: []string{"host", "container:db"},
		Images:   []string{"registry.local/*", "busybox:*"},
	}
	cases := []struct {
		name   string
		policy NodePolicy
		ct     Container
		denied string
	}{
		{"defaults: bridge, no volume, any image", NodePolicy{}, Container{Image: "anything:1", Network: "bridge"}, ""},
		{"defaults: none", NodePolicy{}, Container{Image: "x", Network: "none"}, ""},
		{"defaults: host network", NodePolicy{}, Container{Image: "x", Network: "host"}, `network "host" is not allowed (allows: bridge, none)`},
		{"defaults: another container's network", NodePolicy{}, Container{Image: "x", Network: "container:db"}, `network "container:db" is not allowed`},
		{"defaults: no host path", NodePolicy{}, Container{Image: "x", Volumes: []string{"/srv/data:/data"}}, "the node allows no host paths"},
		{"listed network", open, Container{Image: "busybox:1.36", Network: "host"}, ""},
		{"image matches", open, Container{Image: "registry.local/app:2", Network: "bridge"}, ""},
		{"image across a slash", open, Container{Image: "registry.local/team/app:2", Network: "bridge"}, `image "registry.local/team/app:2" matches none`},
		{"image of another registry", open, Container{Image: "evil.example/app", Network: "bridge"}, "allows: registry.local/*, busybox:*"},
		{"below an allowed prefix", NodePolicy{Mounts: []string{"/srv/data"}}, Container{Image: "x", Volumes: []string{"/srv/data/in:/in:ro"}}, ""},
		{"the prefix itself", NodePolicy{Mounts: []string{"/srv/data"}}, Container{Image: "x", Volumes: []string{"/srv/data:/in"}}, ""},
		{"a sibling sharing the prefix's letters", NodePolicy{Mounts: []string{"/srv/data"}}, Container{Image: "x", Volumes: []string{"/srv/database:/in"}}, `host path "/srv/database" is not allowed (allows: /srv/data)`},
		{"/ under a prefix list without it", NodePolicy{Mounts: []string{"/srv"}}, Container{Image: "x", Volumes: []string{"/:/host"}}, `host path "/" is allowed only when`},
		{"the socket under an allowed prefix", NodePolicy{Mounts: []string{"/var/run", "/run"}}, Container{Image: "x", Volumes: []string{"/var/run/docker.sock:/s"}}, "Docker socket"},
		{"a directory holding the socket", NodePolicy{Mounts: []string{"/run"}}, Container{Image: "x", Volumes: []string{"/run:/r"}}, "gives the container the Docker socket /run/docker.sock"},
		{"/ listed, but not the socket", NodePolicy{Mounts: []string{"/"}}, Container{Image: "x", Volumes: []string{"/:/host"}}, "Docker socket"},
		{"the socket listed", open, Container{Image: "busybox:1", Network: "bridge", Volumes: []string{"/var/run/docker.sock:/var/run/docker.sock"}}, ""},
		{"/ and the socket listed", open, Container{Image: "busybox:1", Network: "bridge", Volumes: []string{"/:/host:ro"}}, ""},
		{"root in a container needs no run_as", NodePolicy{}, Container{Image: "x", Network: "bridge", User: "0:0"}, ""},
		{"defaults: no capability given back", NodePolicy{}, Container{Image: "x", Network: "bridge", CapAdd: []string{"CHOWN"}}, "capability CHOWN is not allowed (allows: none)"},
		{"a listed capability", NodePolicy{Capabilities: []string{"NET_BIND_SERVICE", "CHOWN"}}, Container{Image: "x", Network: "bridge", CapAdd: []string{"CHOWN"}}, ""},
		{"one capability of two not listed", NodePolicy{Capabilities: []string{"CHOWN"}}, Container{Image: "x", Network: "bridge", CapAdd: []string{"CHOWN", "SYS_ADMIN"}}, "capability SYS_ADMIN is not allowed (allows: CHOWN)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.ct
			err := c.policy.Check(&Job{Name: "j", Command: "true", Container: &ct})
			switch {
			case c.denied == "" && err != nil:
				t.Errorf("%+v: %v, want allowed", c.ct, err)
			case c.denied != "" && (err == nil || !strings.Contains(err.Error(), c.denied)):
				t.Errorf("%+v: %v, want an error containing %q", c.ct, err, c.denied)
			}
		})
	}
}

func TestNodePolicyValidate(t *testing.T) {
	cases := []struct {
		policy NodePolicy
		err    string
	}{
		{NodePolicy{RunAs: []string{"aion", "0", "backup:disk"}, Mounts: []string{"/srv"}, Networks: []string{"host", "container:db", "backend"}, Images: []string{"registry.local/*"}}, ""},
		{NodePolicy{RunAs: []string{"Bad User"}}, "executor.run_as"},
		{NodePolicy{Mounts: []string{"srv/data"}}, "executor.container_mounts"},
		{NodePolicy{Mounts: []string{"/srv/../etc"}}, "executor.container_mounts"},
		{NodePolicy{Networks: []string{"container:"}}, "executor.container_networks"},
		{NodePolicy{Images: []string{"registry.local/["}}, "executor.container_images"},
		{NodePolicy{Capabilities: []string{"NET_BIND_SERVICE"}}, ""},
		{NodePolicy{Capabilities: []string{"CAP_CHOWN"}}, `executor.container_capabilities: "CAP_CHOWN": write CHOWN`},
		{NodePolicy{Capabilities: []string{"ALL"}}, "executor.container_capabilities"},
	}
	for _, c := range cases {
		err := c.policy.Validate()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.policy, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%+v: %v, want an error naming %s", c.policy, err, c.err)
		}
	}
}

func TestContainerFieldsValidated(t *testing.T) {
	cases := []struct {
		field, value, want string
	}{
		{"volumes", `["data:/data"]`, `job.yaml:4:15: container.volumes[0]: host path "data" must be absolute`},
		{"volumes", `["/srv/../etc:/data"]`, `job.yaml:4:15: container.volumes[0]: host path "/srv/../etc" must be clean: write "/etc"`},
		{"volumes", `["/srv/data/:/data"]`, `container.volumes[0]: host path "/srv/data/" must be clean`},
		{"network", `"container:"`, `job.yaml:4:14: container.network: "container:"`},
		{"network", `"bad mode"`, `container.network: "bad mode" is not a network mode`},
		{"cap_add", `[NET_BIND_SERVICE, net_raw]`, `job.yaml:4:33: container.cap_add[1]: "net_raw": write NET_RAW`},
		{"cap_add", `[ALL]`, `container.cap_add[0]: "ALL": name each capability`},
		{"cap_add", `[FLY]`, `container.cap_add[0]: "FLY" is not a Linux capability`},
	}
	for _, c := range cases {
		src := "name: j\nschedule: manual\ncontainer:\n    " + c.field + ": " + c.value + "\n    image: busybox\n"
		_, errs := Parse("job.yaml", []byte(src))
		if !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%s: %s: got %v, want %q", c.field, c.value, errs, c.want)
		}
	}
	for _, ok := range []string{`network: host`, `network: "container:db"`, `network: backend`, `volumes: ["/srv/data:/data:ro"]`, `cap_add: [NET_BIND_SERVICE]`} {
		src := "name: j\nschedule: manual\ncontainer:\n    " + ok + "\n    image: busybox\n"
		if _, errs := Parse("job.yaml", []byte(src)); len(errs) > 0 {
			t.Errorf("%s: %v, want valid (the node's policy decides)", ok, errs)
		}
	}
}
