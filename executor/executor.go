package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/executor/containerizer"
	"github.com/aionsched/aion/executor/supervisor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler/store"
)

// Config describes one executor node. DefaultConfig gives working values.
type Config struct {
	// NodeID names the node: its registration key, its NATS subjects and
	// the AION_NODE of its runs. Letters, digits, '-' and '_'.
	NodeID string
	// Labels describe the node; a job's constraints select nodes by them.
	// Every node also has the labels os (runtime.GOOS), arch
	// (runtime.GOARCH) and hostname (when the host name is a valid label
	// value); a label set here overrides the default of the same key.
	Labels map[string]string
	// Slots is how many fires the node runs at once.
	Slots         int
	Prefix        string // etcd key prefix
	SubjectPrefix string // NATS subject prefix
	// LeaseTTL is the registration lease: the leader marks this node's runs
	// lost about this long, plus Fence, after the node dies.
	LeaseTTL time.Duration
	// Fence is how long a host run outlives its executor's silence: its
	// supervisor kills it when it hears nothing for this long, and the
	// executor stops beating its runs as soon as it cannot be sure its
	// lease is alive. Shorter than LeaseTTL.
	Fence time.Duration
	// SupervisorPath is the program the node's supervisor of host runs is
	// started from (package supervisor): aion-supervise, or a program
	// that calls supervisor.RunIfInvoked first thing. Empty: aion-supervise
	// next to this executable if it is there, else this executable.
	SupervisorPath string
	// OutputDir keeps the full output of every run.
	OutputDir string
	// OutputLimit caps the output a run keeps, in bytes, unless its job
	// sets output_limit: past it the output file stops growing and the
	// fire record says the output was truncated. 0 means no limit.
	OutputLimit int64
	// TailBytes is how much of the end of the output goes in the fire record.
	TailBytes int
	// Grace is how long a stopped job has between SIGTERM and SIGKILL (at
	// most 10 s): on shutdown running jobs get SIGTERM at once, as do
	// timed-out and killed ones.
	Grace time.Duration
	// LoadEvery is the load report interval.
	LoadEvery time.Duration
	// OutputRetention is how long full output files are kept; 0 keeps
	// them forever. The output of a running fire is never deleted.
	OutputRetention time.Duration
	// SweepEvery is how often old output files are deleted.
	SweepEvery time.Duration
	// Docker says whether this node runs container jobs (see DockerMode).
	// DefaultConfig leaves it off; aion executor and aion dev default to
	// auto.
	Docker DockerMode
	// PullTimeout bounds each image pull of a container job.
	PullTimeout time.Duration
	// SecretsDir is the directory the files of jobs' env_from are read
	// from (and only it); empty: jobs cannot read files through env_from.
	SecretsDir string
	// PassEnv names the variables of the executor's own environment that
	// jobs may take with env_from; no other reaches a job.
	PassEnv []string
	// Policy is what the node allows jobs: the users host runs may run as
	// (RunAs) and the host paths, networks and images of container runs.
	// Its User and UID are set by New to the executor's own user. The zero
	// value is the default policy (see jobspec.NodePolicy). The node
	// advertises it in its registration, and refuses a claimed run it
	// forbids, recording the run failed with the reason.
	Policy jobspec.NodePolicy
}

// DefaultOutputLimit is the output a run keeps when neither its job nor
// the executor's configuration says otherwise: 10 MiB.
const DefaultOutputLimit = 10 << 20

// DockerMode says whether an executor runs container jobs.
type DockerMode string

// The Docker modes. A node that runs containers advertises it with the
// label store.DockerLabel=true, which the leader requires of container jobs.
const (
	// DockerAuto uses the Docker engine if one answers a ping at start
	// (client.FromEnv: DOCKER_HOST, else the local socket); otherwise the
	// node runs host jobs only.
	DockerAuto DockerMode = "auto"
	// DockerOn refuses to start without a Docker engine.
	DockerOn DockerMode = "on"
	// DockerOff runs host jobs only.
	DockerOff DockerMode = "off"
)

// DefaultConfig returns working values for one node: named after the host,
// four slots, a 5 s lease, output kept a week in the temporary directory,
// no Docker.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeID:        sanitizeNodeID(host),
		Slots:         4,
		Prefix:        store.DefaultPrefix,
		SubjectPrefix: "aion.",
		LeaseTTL:      5 * time.Second,
		Fence:         3 * time.Second,
		OutputDir:     filepath.Join(os.TempDir(), "aion-output"),
		OutputLimit:   DefaultOutputLimit,
		TailBytes:     4 << 10,
		Grace:         10 * time.Second,
		LoadEvery:     time.Second,
		// A week of output, swept hourly.
		OutputRetention: 7 * 24 * time.Hour,
		SweepEvery:      time.Hour,
		Docker:          DockerOff,
		PullTimeout:     containerizer.DefaultPullTimeout,
	}
}

// withDefaultLabels returns the os, arch and hostname labels every node
// has, overridden by the configured labels.
func withDefaultLabels(configured map[string]string) map[string]string {
	labels := map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH}
	if host, err := os.Hostname(); err == nil {
		if _, err := jobspec.ParseSelector("hostname=" + host); err == nil {
			labels["hostname"] = host
		}
	}
	maps.Copy(labels, configured)
	return labels
}

var invalidNodeID = regexp.MustCompile(`[^A-Za-z0-9_-]`)

func sanitizeNodeID(s string) string {
	s = invalidNodeID.ReplaceAllString(s, "-")
	if !store.ValidNodeID(s) {
		return "node"
	}
	return s
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case !store.ValidNodeID(c.NodeID):
		return fmt.Errorf("executor: node ID %q: use letters, digits, '-' and '_' (it is part of NATS subjects)", c.NodeID)
	case !store.ValidSubjectPrefix(c.SubjectPrefix):
		return fmt.Errorf("executor: NATS subject prefix %q: want tokens of letters, digits, '-' or '_', each ending in '.', e.g. \"aion.\"", c.SubjectPrefix)
	case c.Slots < 1:
		return fmt.Errorf("executor: slots must be at least 1, got %d", c.Slots)
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("executor: lease TTL %s is below etcd's 1s minimum", c.LeaseTTL)
	case c.Fence < 100*time.Millisecond || c.Fence >= c.LeaseTTL:
		return fmt.Errorf("executor.fence (--fence): %s: want at least 100ms and less than the registration lease TTL (%s)", c.Fence, c.LeaseTTL)
	case c.OutputDir == "":
		return errors.New("executor: empty output directory")
	case c.OutputLimit < 0:
		return fmt.Errorf("executor: output limit %d must not be negative (0: no limit)", c.OutputLimit)
	case c.OutputRetention < 0 || c.SweepEvery <= 0:
		return errors.New("executor: output retention must not be negative and the sweep interval must be positive")
	case c.Docker != DockerAuto && c.Docker != DockerOn && c.Docker != DockerOff:
		return fmt.Errorf("executor: docker mode %q: want auto, on or off", c.Docker)
	case c.PullTimeout < 0:
		return errors.New("executor: the image pull timeout must not be negative")
	case c.SecretsDir != "" && !filepath.IsAbs(c.SecretsDir):
		return fmt.Errorf("executor: secrets directory %q must be an absolute path", c.SecretsDir)
	}
	for _, name := range c.PassEnv {
		if !validEnvName.MatchString(name) || strings.HasPrefix(name, "AION_") {
			return fmt.Errorf("executor: pass_env: %q is not a variable name a job may take (letters, digits and '_', not starting with a digit or AION_)", name)
		}
	}
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	for k, v := range c.Labels {
		if k == store.DockerLabel || k == store.DockerVersionLabel {
			return fmt.Errorf("executor: label %s is set by the executor when it finds a Docker engine (see the docker mode), not by configuration", k)
		}
		if _, err := jobspec.ParseSelector(k + "=" + v); err != nil {
			return fmt.Errorf("executor: label %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// defaultSupervisor is the program the supervisor is started from: the
// aion-supervise program next to this one if there is one (small, quick
// to start), else this program itself (which must call
// supervisor.RunIfInvoked).
func defaultSupervisor() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program, to start supervisors from: %w", err)
	}
	beside := filepath.Join(filepath.Dir(self), supervisor.ProcessName)
	if info, err := os.Stat(beside); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
		return beside, nil
	}
	return self, nil
}

// Executor runs fires dispatched to its node (Config.NodeID): New builds
// it, Run runs it.
type Executor struct {
	cfg  Config
	etcd *clientv3.Client
	nats *nats.Conn
	log  *zap.Logger
	keys store.Keys

	// containers runs container jobs; nil when this node has no Docker
	// engine. Set by Run before any job runs.
	containers containerEngine

	// lock is the node's lock, held while Run runs; sup the supervisor of
	// its host runs, set by Run.
	lock *nodeLock
	sup  *supervisor.Supervisor

	// lease is the registration lease (its ID) and leaseUntil the moment
	// until which it is surely alive (see keepAlive), on bootClock
	// (CLOCK_BOOTTIME, as the supervisor's fence: a suspended machine's
	// lease counts as expired on resume, as it did in etcd).
	lease      atomic.Int64
	leaseUntil atomic.Int64 // a bootClock reading; 0: none
	bootClock  func() time.Duration

	mu      sync.Mutex
	running map[store.FireID]activeRun // guarded by mu

	dirs sync.Map // output directories known to exist

	claimCalls  chan claimCall  // to the claim committers
	resultCalls chan resultCall // to the result committers
}

// activeRun is a fire this executor claims or runs: the attempt, and how
// to stop it.
type activeRun struct {
	attempt int
	cancel  context.CancelCauseFunc
	killing bool // a kill its record asked for was acted on
}

// containerEngine runs container jobs: *containerizer.Engine on the node's
// Docker engine.
type containerEngine interface {
	Run(ctx context.Context, s containerizer.Spec, out io.Writer) (containerizer.Result, error)
	Resume(ctx context.Context, id string, s containerizer.Spec, out io.Writer) (containerizer.Result, error)
	Remove(ctx context.Context, id string) error
	RemoveLeftovers(ctx context.Context, node string, keep map[string]bool) ([]containerizer.Leftover, error)
	Address() containerizer.Address
}

// New builds an executor; it does nothing until Run.
func New(cfg Config, etcd *clientv3.Client, nc *nats.Conn, log *zap.Logger) *Executor {
	cfg.Labels = withDefaultLabels(cfg.Labels)
	cfg.Policy = withOwnUser(cfg.Policy)
	return &Executor{
		cfg: cfg, etcd: etcd, nats: nc,
		log:       log.Named("executor").With(zap.String("node", cfg.NodeID)),
		keys:      store.Keys{Prefix: cfg.Prefix},
		running:   make(map[store.FireID]activeRun),
		bootClock: supervisor.BootTime,

		claimCalls:  make(chan claimCall),
		resultCalls: make(chan resultCall),
	}
}

// Run registers the node and runs dispatched fires until ctx ends. Then it
// stops claiming, sends SIGTERM to running jobs at once (SIGKILL to those
// still running after Grace), and records every result before returning.
//
// When ctx ends with the cause ErrHandOff (context.WithCancelCause), it
// stops claiming and returns at once instead, leaving its runs (host and
// container) going under the node's supervisor and its registration
// lease to expire: the next executor of the node and output directory,
// started within the fence (executor.fence), adopts them, as it would
// after a crash. This is how an executor is upgraded without stopping
// its runs. If none comes, the supervisor kills them when the fence
// passes, and the leader counts them lost.
//
// If the registration lease is lost (etcd unreachable for longer than the
// lease TTL) the leader counts this node's runs as lost and may retry them
// elsewhere, so the executor kills them at once, then registers again on a
// new lease and goes on.
func (x *Executor) Run(ctx context.Context) error {
	if err := x.cfg.Validate(); err != nil {
		return err
	}
	if err := x.makeOutputRoot(); err != nil {
		return fmt.Errorf("executor output directory: %w", err)
	}
	if x.cfg.SupervisorPath == "" {
		path, err := defaultSupervisor()
		if err != nil {
			return fmt.Errorf("executor: %w", err)
		}
		x.cfg.SupervisorPath = path
	}
	if err := supervisor.Check(x.cfg.SupervisorPath); err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	lock, err := lockNode(x.cfg.OutputDir)
	if err != nil {
		return err
	}
	x.lock = lock
	if lock.pidErr != nil {
		x.log.Warn("the node's lock holds, but its file does not name this executor's PID", zap.Error(lock.pidErr))
	}
	defer func() {
		if err := lock.release(); err != nil {
			x.log.Warn("release the node lock", zap.Error(err))
		}
	}()
	// The supervisor of this node's host runs: a predecessor's, still
	// running (its runs are adopted below), or a new one.
	sup, attached, err := supervisor.Open(x.cfg.SupervisorPath, filepath.Join(x.cfg.OutputDir, runsDir), x.cfg.Fence)
	if err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	x.sup = sup
	defer sup.Close()
	stopBeats := x.beat(ctx)
	defer stopBeats()
	// Claims and results go through committers that outlive every run.
	commitCtx, stopCommitters := context.WithCancel(context.WithoutCancel(ctx))
	waitCommitters := x.runCommitters(commitCtx)
	defer func() { stopCommitters(); waitCommitters() }()
	engine, err := x.connectDocker(ctx)
	if err != nil {
		return err
	}
	if engine != nil {
		defer engine.Close()
		x.containers = engine
	}
	// Subscribed before registering: the leader dispatches as soon as it
	// sees the registration, and a dispatch must not find nobody there.
	// Dispatches wait in the queue until the predecessor's runs are
	// settled (serve).
	logKey, err := store.LogSigningKey(ctx, x.etcd, x.keys)
	if err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	dispatches := make(chan store.Dispatch, 1024)
	unsubscribe, err := x.subscribe(ctx, dispatches, logKey)
	if err != nil {
		return err
	}
	defer unsubscribe()
	lease, err := x.register(ctx)
	if err != nil {
		return err
	}
	// Holding the registration proves no other live executor is this node,
	// so supervisors, runs and containers marked with it belong to a dead
	// predecessor. Its live supervisors are adopted; any other run of it
	// is lost (the leader sees that its record names a lease no
	// registration holds).
	adopted := x.adoptRuns(ctx, attached)
	keys := make(map[string]bool, len(adopted))
	containers := make(map[string]bool)
	for _, a := range adopted {
		keys[runKey(a.claim.Fire.ID.String(), strconv.Itoa(a.claim.Fire.Attempt))] = true
		if a.claim.Container != "" {
			containers[a.claim.Container] = true
		}
	}
	x.killOrphans(keys)
	x.settleLeftovers(ctx, x.removeLeftoverContainers(ctx, containers))
	x.log.Info("executor ready", zap.Int("slots", x.cfg.Slots), zap.Any("labels", x.cfg.Labels),
		zap.String("policy", x.cfg.Policy.Summary()))
	x.sweepOutput(time.Now())
	for {
		lost := x.serve(ctx, lease, dispatches, adopted)
		adopted = nil
		lease.stopKeepAlive()
		if handingOff(ctx) {
			x.log.Info("handed off: the runs go on under the node's supervisor for the next executor of the node to adopt",
				zap.Duration("fence", x.cfg.Fence))
			return nil
		}
		if !lost {
			x.revoke(lease.id)
			if err := x.sup.Stop(5 * time.Second); err != nil {
				x.log.Warn("stop the supervisor", zap.Error(err))
			}
			return nil
		}
		if lease, err = x.registerAgain(ctx, lease.id); err != nil {
			return nil // ctx ended while etcd was unreachable
		}
		x.log.Info("registered again on a new lease")
		x.removeLeftoverContainers(ctx, nil) // any the killed runs could not remove
	}
}

// subscribe subscribes to this node's dispatches (queued on dispatches;
// when the queue is full the leader dispatches again), log requests
// (answered only when signed with logKey) and kill hints. unsubscribe
// ends all three.
func (x *Executor) subscribe(ctx context.Context, dispatches chan<- store.Dispatch, logKey []byte) (unsubscribe func(), err error) {
	var subs []*nats.Subscription
	unsubscribe = func() {
		for _, sub := range slices.Backward(subs) {
			_ = sub.Unsubscribe()
		}
	}
	sub, err := x.nats.Subscribe(store.DispatchSubject(x.cfg.SubjectPrefix, x.cfg.NodeID), func(m *nats.Msg) {
		var d store.Dispatch
		if json.Unmarshal(m.Data, &d) == nil {
			select {
			case dispatches <- d:
			default:
				x.log.Warn("dispatch queue full; the leader will dispatch again", zap.Stringer("fire", d.Fire))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to dispatches: %w", err)
	}
	subs = append(subs, sub)
	logs, err := x.serveLogs(logKey)
	if err != nil {
		unsubscribe()
		return nil, fmt.Errorf("serve logs: %w", err)
	}
	subs = append(subs, logs)
	kills, err := x.nats.Subscribe(store.KillSubject(x.cfg.SubjectPrefix, x.cfg.NodeID), func(m *nats.Msg) {
		var k store.Kill
		if json.Unmarshal(m.Data, &k) == nil {
			go x.onKill(ctx, k)
		}
	})
	if err != nil {
		unsubscribe()
		return nil, fmt.Errorf("subscribe to kills: %w", err)
	}
	subs = append(subs, kills)
	return unsubscribe, nil
}

// revoke revokes the registration lease on the way out, so the node's key
// goes at once instead of when the lease expires.
func (x *Executor) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := x.etcd.Revoke(ctx, id); err != nil {
		x.log.Warn("revoke registration lease", zap.Error(err))
	}
}

// errLeaseLost is the cancel cause of runs killed because the node lost
// its registration.
var errLeaseLost = errors.New("killed: the executor lost its etcd registration, so its runs count as lost")

// serve runs dispatched fires under one registration until ctx ends (it
// returns false once running jobs are done) or the lease is lost (it kills
// the running jobs and returns true once their processes are gone).
func (x *Executor) serve(ctx context.Context, lease registration, dispatches <-chan store.Dispatch, adopted []adoption) (lost bool) {
	var wg sync.WaitGroup
	runCtx, stopRuns := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopRuns(nil)
	for _, a := range adopted {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.serveAdopted(runCtx, a)
		}()
	}
	loadTick := time.NewTicker(x.cfg.LoadEvery)
	defer loadTick.Stop()
	sweepTick := time.NewTicker(x.cfg.SweepEvery)
	defer sweepTick.Stop()
	x.publishLoad()
	for {
		select {
		case <-ctx.Done():
			x.shutdown(ctx, &wg, stopRuns)
			return false
		case <-lease.keepAliveDone:
			if ctx.Err() != nil { // the keep-alive ended because we are stopping
				x.shutdown(ctx, &wg, stopRuns)
				return false
			}
			x.log.Error("registration lease lost: killing running jobs, then registering again", zap.Int("running", x.busy()))
			stopRuns(errLeaseLost)
			wg.Wait()
			return true
		case d := <-dispatches:
			if x.busy() >= x.cfg.Slots {
				continue // stays planned; the leader dispatches it again when a slot is free
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				x.handle(runCtx, d)
			}()
		case <-loadTick.C:
			x.publishLoad()
		case now := <-sweepTick.C:
			x.sweepOutput(now)
		}
	}
}

// registerAgain registers on a new lease, retrying with backoff while etcd
// is unreachable, until it succeeds or ctx ends. The old lease is revoked
// first: etcd may still hold it (leases do not expire while etcd has no
// quorum), and with it the node's key.
func (x *Executor) registerAgain(ctx context.Context, old clientv3.LeaseID) (registration, error) {
	wait := 500 * time.Millisecond
	for {
		revokeCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := x.etcd.Revoke(revokeCtx, old)
		cancel()
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			x.log.Warn("revoke the lost registration lease", zap.Error(err), zap.Duration("retry_in", wait))
		}
		lease, err := x.register(ctx)
		if err == nil {
			return lease, nil
		}
		x.log.Warn("register again", zap.Error(err), zap.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return registration{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, x.cfg.LeaseTTL)
	}
}

// errStopping is the cancel cause of runs stopped because the executor is
// shutting down.
var errStopping = errors.New("killed: the executor stopped")

// ErrHandOff, as the cause of the end of Run's context, makes the
// executor exit leaving its runs to its successor (see Run). It wraps
// containerizer.ErrDetach: a container run it ends is left running.
var ErrHandOff = fmt.Errorf("executor: handing its runs off to the next executor of the node: %w", containerizer.ErrDetach)

// handingOff reports whether ctx ended to hand the runs off.
func handingOff(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrHandOff) }

// shutdown stops the running jobs at once (their process groups get
// SIGTERM, and SIGKILL after Grace) and waits for their results to be
// recorded. To hand them off (ctx's cause), it only lets go of them.
func (x *Executor) shutdown(ctx context.Context, wg *sync.WaitGroup, stopRuns context.CancelCauseFunc) {
	if handingOff(ctx) {
		stopRuns(ErrHandOff)
		wg.Wait()
		return
	}
	if n := x.busy(); n > 0 {
		x.log.Info("stopping running jobs: SIGTERM now, SIGKILL after the grace period", zap.Int("running", n), zap.Duration("grace", x.cfg.Grace))
	}
	stopRuns(errStopping)
	wg.Wait()
}

func (x *Executor) busy() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.running)
}

type registration struct {
	id            clientv3.LeaseID
	keepAliveDone <-chan struct{}
	// stopKeepAlive stops renewing the lease: once the runs are done, as
	// the supervisors are beaten only while it is renewed.
	stopKeepAlive context.CancelFunc
	// tookOver is set when the registration was a dead predecessor's.
	tookOver bool
}

// register writes nodes/<id> on a lease kept alive until ctx ends. A
// registration already there that names this executor's lock is a dead
// predecessor's: it is taken over at once (takeOver); any other is a live
// executor's, and registering fails.
func (x *Executor) register(ctx context.Context) (registration, error) {
	node := store.Node{ID: x.cfg.NodeID, Labels: x.cfg.Labels, Slots: x.cfg.Slots, StartedAt: time.Now().UTC(),
		Lock: x.lock.id, PID: os.Getpid(), Policy: &x.cfg.Policy}
	sent := x.bootClock()
	grant, err := x.etcd.Grant(ctx, int64((x.cfg.LeaseTTL+time.Second-1)/time.Second))
	if err != nil {
		return registration{}, fmt.Errorf("grant registration lease: %w", err)
	}
	x.leaseUntil.Store(int64(sent + time.Duration(grant.TTL)*time.Second))
	node.Lease = int64(grant.ID)
	data, err := json.Marshal(node)
	if err != nil {
		x.revoke(grant.ID)
		return registration{}, fmt.Errorf("encode node registration: %w", err)
	}
	tookOver, err := x.claimRegistration(ctx, data, grant.ID)
	if err != nil {
		x.revoke(grant.ID)
		return registration{}, err
	}
	x.lease.Store(int64(grant.ID))
	done := make(chan struct{})
	keepCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	go x.keepAlive(keepCtx, grant.ID, done)
	return registration{id: grant.ID, keepAliveDone: done, stopKeepAlive: stop, tookOver: tookOver}, nil
}

// keepAlive renews the registration lease every third of its TTL until
// ctx ends or the lease is lost, then closes done. After each renewal it
// notes until when the lease is surely alive: the time the renewal was
// sent plus the TTL granted, a moment etcd's expiry cannot come before
// (leaseAlive). The lease is lost when that moment passes without a
// renewal, or etcd says it is gone.
func (x *Executor) keepAlive(ctx context.Context, id clientv3.LeaseID, done chan<- struct{}) {
	defer close(done)
	every := x.cfg.LeaseTTL / 3
	for {
		sent, sentAt := x.bootClock(), time.Now()
		callCtx, cancel := context.WithTimeout(ctx, every)
		resp, err := x.etcd.KeepAliveOnce(callCtx, id)
		cancel()
		switch {
		case err == nil && resp.TTL > 0:
			x.leaseUntil.Store(int64(sent + time.Duration(resp.TTL)*time.Second))
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || (err == nil && resp.TTL <= 0):
			x.leaseUntil.Store(0)
			return
		}
		if ctx.Err() != nil || !x.leaseAlive() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every - time.Since(sentAt)):
		}
	}
}

// beat tells the supervisor, every quarter of the fence, that this
// executor lives, while its lease is surely alive: a paused or cut-off
// executor's runs are killed by their fence. It returns a function that
// stops it.
func (x *Executor) beat(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(x.cfg.Fence / 4)
		defer tick.Stop()
		for {
			if x.leaseAlive() {
				if err := x.sup.Beat(); err != nil {
					x.log.Debug("beat the supervisor", zap.Error(err))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// leaseAlive reports whether the registration lease is surely alive now:
// only then are runs' supervisors told their executor lives.
func (x *Executor) leaseAlive() bool {
	until := x.leaseUntil.Load()
	return until != 0 && x.bootClock() < time.Duration(until)
}

// claimRegistration writes the node's key on lease if it does not exist,
// or takes it over from a dead predecessor (tookOver).
func (x *Executor) claimRegistration(ctx context.Context, data []byte, lease clientv3.LeaseID) (tookOver bool, err error) {
	key := x.keys.Node(x.cfg.NodeID)
	resp, err := x.etcd.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("register node: %w", err)
	}
	if resp.Succeeded {
		return false, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return false, fmt.Errorf("register node: node ID %q: its registration changed while registering", x.cfg.NodeID)
	}
	kv := registered{rev: kvs[0].ModRevision, lease: clientv3.LeaseID(kvs[0].Lease)}
	if err := json.Unmarshal(kvs[0].Value, &kv.node); err != nil {
		return false, fmt.Errorf("register node: node ID %q: undecodable registration: %w", x.cfg.NodeID, err)
	}
	return true, x.takeOver(ctx, key, kv, data, lease)
}

func (x *Executor) publishLoad() {
	r := store.LoadReport{
		Node: x.cfg.NodeID, Labels: x.cfg.Labels, Slots: x.cfg.Slots, Running: x.busy(),
		Load1: loadAverage(), MemFree: memAvailable(), At: time.Now().UTC(),
	}
	data, err := json.Marshal(r) // fails only on a load average of NaN or ±Inf
	if err != nil {
		x.log.Warn("encode load report; not published", zap.Error(err))
		return
	}
	if err := x.nats.Publish(store.LoadSubject(x.cfg.SubjectPrefix), data); err != nil {
		x.log.Debug("publish load", zap.Error(err))
	}
}

func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}

func memAvailable() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// runEnv adds to env the job's variables, those of its env_from (from),
// the fire's overrides, then the AION_* variables. A container run gets
// only these (on top of its image's). fence is the attempt's fencing
// token, AION_FENCE: the etcd revision of its claim.
func runEnv(env map[string]string, job *jobspec.Job, from map[string]string, f store.Fire, fence int64) map[string]string {
	maps.Copy(env, job.Env)
	maps.Copy(env, from)
	maps.Copy(env, f.Env)
	env["AION_JOB"] = job.Name
	env["AION_FIRE_ID"] = f.ID.String()
	env["AION_SCHEDULED_TIME"] = f.Nominal.UTC().Format(time.RFC3339)
	env["AION_ATTEMPT"] = strconv.Itoa(f.Attempt)
	env["AION_NODE"] = f.Node
	env["AION_FENCE"] = strconv.FormatInt(fence, 10)
	return env
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// killedError is the cancel cause of a run stopped on request.
type killedError struct{ reason string }

func (e killedError) Error() string { return e.reason }

// onKill acts on a kill hint: it reads the fire's record and stops the
// run only if the record asks for it (Fire.Kill) for the attempt this node
// runs; the run's process group gets SIGTERM, then SIGKILL after the grace
// period, and it is recorded as cancelled with the record's reason. A
// forged hint costs one etcd read.
func (x *Executor) onKill(ctx context.Context, k store.Kill) {
	x.mu.Lock()
	run, ok := x.running[k.Fire]
	x.mu.Unlock()
	if !ok || run.killing {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := x.etcd.Get(ctx, x.keys.Fire(k.Fire))
	if err != nil {
		x.log.Warn("kill hint: read the fire record; the leader hints again", zap.Stringer("fire", k.Fire), zap.Error(err))
		return
	}
	var f store.Fire
	if len(resp.Kvs) == 0 || json.Unmarshal(resp.Kvs[0].Value, &f) != nil ||
		!f.KillAsked() || f.Node != x.cfg.NodeID || f.Attempt != run.attempt {
		x.log.Debug("kill hint ignored: the fire record asks for no kill of this run", zap.Stringer("fire", k.Fire))
		return
	}
	x.mu.Lock()
	run, ok = x.running[k.Fire]
	act := ok && !run.killing && run.attempt == f.Attempt
	if act {
		run.killing = true
		x.running[k.Fire] = run
	}
	x.mu.Unlock()
	if act {
		x.log.Info("killing run: its record asks for it", zap.Stringer("fire", k.Fire), zap.String("reason", f.Kill.Reason))
		run.cancel(killedError{reason: f.Kill.Reason})
	}
}
