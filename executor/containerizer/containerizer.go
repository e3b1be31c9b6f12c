// Package containerizer runs Aion jobs in Docker containers through the
// Docker Engine API. It owns everything between a job and the engine: how a
// job's command, args, env, user, volumes, network and resources become a
// container; the image pull policy; starting the container with its output
// captured; the timeout (stop: SIGTERM, then SIGKILL after the grace
// period); reporting how the container ended (exit code, out of memory);
// and finding the containers a dead executor left behind, by their labels.
//
// It knows nothing of etcd or fires: the executor claims a fire, runs it
// here and records the result.
//
//	eng, err := containerizer.Connect(ctx, log) // pings the engine
//	if err != nil { ... }                        // no Docker on this node
//	defer eng.Close()
//	spec := containerizer.SpecFor(job, runArgs, env)
//	spec.Labels = containerizer.Labels(fireID, jobName, attempt, node)
//	res, err := eng.Run(ctx, spec, outputFile)
//	defer eng.Remove(context.WithoutCancel(ctx), res.ContainerID)
package containerizer

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// The labels every container of a run carries. A restarted executor finds
// the containers of its dead predecessor by LabelNode.
const (
	LabelFire    = "aion.fire"    // the fire's ID
	LabelAttempt = "aion.attempt" // the attempt's number
	LabelNode    = "aion.node"    // the node that runs it
	LabelJob     = "aion.job"     // the job's name
)

// DefaultPullTimeout bounds an image pull when no option says otherwise: a
// registry that does not answer must fail the run, not hang it.
const DefaultPullTimeout = 5 * time.Minute

// Engine is a connection to one Docker engine.
type Engine struct {
	cli         *client.Client
	log         *zap.Logger
	pullTimeout time.Duration
	version     string
	apiVersion  string
	certPath    string
}

// Address is how another process reaches the engine: the executor's
// supervisor kills fenced containers through it.
type Address struct {
	Host       string // as DOCKER_HOST: unix:///var/run/docker.sock, tcp://HOST:PORT
	APIVersion string // the version negotiated with the engine
	CertPath   string // DOCKER_CERT_PATH, for an engine on TLS; empty otherwise
}

// Option adjusts an Engine.
type Option func(*Engine)

// WithPullTimeout bounds each image pull (DefaultPullTimeout otherwise).
func WithPullTimeout(d time.Duration) Option {
	return func(e *Engine) {
		if d > 0 {
			e.pullTimeout = d
		}
	}
}

// Connect opens a client configured from the environment (DOCKER_HOST,
// DOCKER_CERT_PATH, ...; the local socket by default), negotiates the API
// version with the engine and pings it. The caller bounds the ping with
// ctx. An error means this node cannot run containers.
func Connect(ctx context.Context, log *zap.Logger, opts ...Option) (*Engine, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("docker engine at %s: %w", cli.DaemonHost(), err)
	}
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("docker engine at %s: version: %w", cli.DaemonHost(), err)
	}
	e := &Engine{
		cli: cli, log: log.Named("docker"), pullTimeout: DefaultPullTimeout,
		version: v.Version, apiVersion: cli.ClientVersion(), certPath: os.Getenv("DOCKER_CERT_PATH"),
	}
	for _, opt := range opts {
		opt(e)
	}
	return e, nil
}

// Version is the engine's version, e.g. "20.10.24".
func (e *Engine) Version() string { return e.version }

// APIVersion is the API version negotiated with the engine, e.g. "1.41".
func (e *Engine) APIVersion() string { return e.apiVersion }

// Address is how another process reaches this engine.
func (e *Engine) Address() Address {
	return Address{Host: e.cli.DaemonHost(), APIVersion: e.apiVersion, CertPath: e.certPath}
}

// Close closes the client; running containers are not touched.
func (e *Engine) Close() error { return e.cli.Close() }
