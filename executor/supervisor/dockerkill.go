package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// killTimeout bounds one kill request to an engine.
const killTimeout = 2 * time.Second

// killContainer sends SIGKILL to container c through its engine. A
// container that is gone or not running needs no kill: that is not an
// error.
func killContainer(c Container) error {
	opts := []client.Opt{client.WithHost(c.Host)}
	if c.APIVersion != "" {
		opts = append(opts, client.WithAPIVersion(c.APIVersion))
	}
	if c.CertPath != "" {
		opts = append(opts, client.WithTLSClientConfig(filepath.Join(c.CertPath, "ca.pem"),
			filepath.Join(c.CertPath, "cert.pem"), filepath.Join(c.CertPath, "key.pem")))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return fmt.Errorf("docker client for %s: %w", c.Host, err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	_, err = cli.ContainerKill(ctx, c.ID, client.ContainerKillOptions{Signal: "KILL"})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) { // conflict: not running
		return fmt.Errorf("kill container %s: %w", c.ID, err)
	}
	return nil
}
