package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/jobspec"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/apiserver"
	"github.com/aionsched/aion/scheduler/store"
)

// clusterFlags adds the flags every cluster command shares.
func clusterFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSlice("etcd", []string{"http://127.0.0.1:2379"}, "etcd endpoints")
	f.String("nats", "nats://127.0.0.1:4222", "NATS URL")
	f.String("prefix", store.DefaultPrefix, "etcd key prefix")
	configFlag(f, "etcd", "etcd.endpoints")
	configFlag(f, "nats", "nats.url")
	configFlag(f, "prefix", "etcd.prefix")
	clusterSecurityFlags(cmd)
}

func schedulerFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("id", "", "scheduler ID in the election (default: host name-PID)")
	f.String("listen", "127.0.0.1:8080", "HTTP API address")
	f.Duration("session-ttl", 5*time.Second, "leader session TTL")
	f.Duration("misfire-grace", time.Minute, "nominal times later than this follow the job's misfire policy")
	f.Int("history", 100, "fire records kept per job (0: all)")
	httpDefaults := apiserver.DefaultHTTPConfig()
	f.StringSlice("api-hosts", nil, "names the API answers to besides localhost, 127.0.0.1 and [::1] (the Host check)")
	f.Duration("api-read-header-timeout", httpDefaults.ReadHeaderTimeout, "how long a client has to send a request's headers")
	f.Duration("api-read-timeout", httpDefaults.ReadTimeout, "how long a request may take, from its first byte to its answer")
	f.Duration("api-idle-timeout", httpDefaults.IdleTimeout, "how long an idle keep-alive connection stays open")
	f.Int("api-max-header-bytes", httpDefaults.MaxHeaderBytes, "the largest request headers accepted")
	f.Int("api-max-connections", httpDefaults.MaxConnections, "connections served at once; more wait (0: no limit)")
	configFlag(f, "api-hosts", "scheduler.api_hosts")
	configFlag(f, "api-read-header-timeout", "scheduler.api_read_header_timeout")
	configFlag(f, "api-read-timeout", "scheduler.api_read_timeout")
	configFlag(f, "api-idle-timeout", "scheduler.api_idle_timeout")
	configFlag(f, "api-max-header-bytes", "scheduler.api_max_header_bytes")
	configFlag(f, "api-max-connections", "scheduler.api_max_connections")
	configFlag(f, "history", "scheduler.history")
	configFlag(f, "id", "scheduler.id")
	configFlag(f, "listen", "scheduler.listen")
	configFlag(f, "session-ttl", "scheduler.session_ttl")
	configFlag(f, "misfire-grace", "scheduler.misfire_grace")
}

func executorFlags(cmd *cobra.Command, defaultOutput string) {
	f := cmd.Flags()
	f.String("node-id", "", "executor node ID (default: host name)")
	f.String("labels", "", "node labels, k=v,k2=v2")
	f.Int("slots", 4, "runs at once")
	f.String("output-dir", defaultOutput, "where the full output of runs is kept")
	f.Duration("grace", 10*time.Second, "how long a stopped run has between SIGTERM and SIGKILL (on stop, kill or timeout; at most 10s)")
	f.Duration("output-retention", 7*24*time.Hour, "how long full output is kept (0: forever)")
	f.String("output-limit", jobspec.Bytes(executor.DefaultOutputLimit).String(), "output kept per run, e.g. 10MiB, unless the job sets output_limit; past it the output is truncated (0: no limit)")
	configFlag(f, "output-limit", "executor.output_limit")
	f.String("docker", string(executor.DockerAuto), "run container jobs: auto (if a Docker engine answers at start), on (refuse to start without one) or off")
	f.Duration("pull-timeout", executor.DefaultConfig().PullTimeout, "how long an image pull of a container job may take")
	configFlag(f, "output-retention", "executor.output_retention")
	configFlag(f, "docker", "executor.docker")
	configFlag(f, "pull-timeout", "executor.pull_timeout")
	configFlag(f, "node-id", "executor.node_id")
	configFlag(f, "labels", "executor.labels")
	configFlag(f, "slots", "executor.slots")
	configFlag(f, "output-dir", "executor.output_dir")
	configFlag(f, "grace", "executor.grace")
	f.Duration("fence", 3*time.Second, "a run (host or container) is killed when its executor has been silent (or unsure of its etcd lease) this long; under the 5s lease")
	configFlag(f, "fence", "executor.fence")
	f.String("supervisor", "", "the program the node's supervisor of host runs runs from (default: aion-supervise next to aion, else aion itself)")
	configFlag(f, "supervisor", "executor.supervisor")
	f.String("secrets-dir", "", "the directory jobs' env_from files are read from (empty: none)")
	f.StringSlice("pass-env", nil, "variables of the executor's environment jobs may take with env_from")
	configFlag(f, "secrets-dir", "executor.secrets_dir")
	configFlag(f, "pass-env", "executor.pass_env")
	f.StringSlice("run-as", nil, "users jobs may name in user: besides the executor's own (never root unless listed), e.g. aion,postgres")
	f.StringSlice("container-mounts", nil, "host path prefixes container volumes may mount (default none; / and the Docker socket only when listed as such)")
	f.StringSlice("container-networks", nil, "container network modes allowed besides bridge and none, e.g. host,container:db,backend")
	f.StringSlice("container-images", nil, "glob patterns container images must match, e.g. registry.local/* (default: any image)")
	configFlag(f, "run-as", "executor.run_as")
	configFlag(f, "container-mounts", "executor.container_mounts")
	configFlag(f, "container-networks", "executor.container_networks")
	f.StringSlice("container-capabilities", nil, "Linux capabilities a container's cap_add may give back (containers start with none), e.g. NET_BIND_SERVICE,CHOWN")
	configFlag(f, "container-images", "executor.container_images")
	configFlag(f, "container-capabilities", "executor.container_capabilities")
}

func (a *app) schedulerConfig() scheduler.Config {
	cfg := scheduler.DefaultConfig()
	cfg.ID = a.cfg.Scheduler.ID
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	cfg.Prefix = a.cfg.Etcd.Prefix
	if a.cfg.Scheduler.SessionTTL > 0 {
		cfg.SessionTTL = a.cfg.Scheduler.SessionTTL
	}
	cfg.MisfireGrace = a.cfg.Scheduler.MisfireGrace
	cfg.HistoryKeep = a.cfg.Scheduler.History
	return cfg
}

func (a *app) executorConfig() (executor.Config, error) {
	cfg := executor.DefaultConfig()
	if a.cfg.Executor.NodeID != "" {
		cfg.NodeID = a.cfg.Executor.NodeID
	}
	labels, err := parseLabels(a.cfg.Executor.Labels)
	if err != nil {
		return cfg, &exitError{code: exitUsage, err: fmt.Errorf("--labels: %w", err)}
	}
	cfg.Labels = labels
	cfg.Slots = a.cfg.Executor.Slots
	cfg.Prefix = a.cfg.Etcd.Prefix
	cfg.OutputDir = a.cfg.Executor.OutputDir
	cfg.Grace = a.cfg.Executor.Grace
	if a.cfg.Executor.Fence > 0 {
		cfg.Fence = a.cfg.Executor.Fence
	}
	cfg.SupervisorPath = a.cfg.Executor.Supervisor
	cfg.OutputRetention = a.cfg.Executor.OutputRetention
	if cfg.OutputLimit, err = outputLimit(a.cfg.Executor.OutputLimit); err != nil {
		return cfg, &exitError{code: exitUsage, err: err}
	}
	cfg.Docker = executor.DockerMode(a.cfg.Executor.Docker)
	cfg.PullTimeout = a.cfg.Executor.PullTimeout
	cfg.SecretsDir, cfg.PassEnv = a.cfg.Executor.SecretsDir, a.cfg.Executor.PassEnv
	cfg.Policy = jobspec.NodePolicy{
		RunAs: a.cfg.Executor.RunAs, Mounts: a.cfg.Executor.ContainerMounts,
		Networks: a.cfg.Executor.ContainerNetworks, Images: a.cfg.Executor.ContainerImages,
		Capabilities: a.cfg.Executor.ContainerCaps,
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

// outputLimit parses executor.output_limit (--output-limit): a size as
// job files write it; 0 means no limit.
func outputLimit(s string) (int64, error) {
	var b jobspec.Bytes
	if err := b.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("executor.output_limit (--output-limit): %w", err)
	}
	return int64(b), nil
}

func parseLabels(s string) (map[string]string, error) {
	labels := make(map[string]string)
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", kv)
		}
		labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return labels, nil
}

// runAll runs each function until parent ends or one fails, and returns
// their errors; once parent has ended, errors of being cancelled are none.
func runAll(parent context.Context, runs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	for i, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = run(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if parent.Err() != nil {
		// Stopped from outside (Ctrl-C): what was cut short by it is no failure.
		for i, err := range errs {
			if errors.Is(err, context.Canceled) {
				errs[i] = nil
			}
		}
	}
	return errors.Join(errs...)
}

// listenAPI listens on the API's address, before anything else is
// started, so that a taken address is the first and only error.
func listenAPI(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &exitError{code: exitAion, err: fmt.Errorf("API listen on %s: %w (is another aion dev or scheduler running? choose another address with --listen, e.g. --listen 127.0.0.1:0)", addr, err)}
	}
	return ln, nil
}

// httpConfig is the API's HTTP limits and names, as configured; bad
// values are usage errors naming their key.
func (a *app) httpConfig() (apiserver.HTTPConfig, error) {
	c := a.cfg.Scheduler
	cfg := apiserver.HTTPConfig{
		ReadHeaderTimeout: c.APIReadHeaderTimeout, ReadTimeout: c.APIReadTimeout, IdleTimeout: c.APIIdleTimeout,
		MaxHeaderBytes: c.APIMaxHeaderBytes, MaxConnections: c.APIMaxConnections,
	}
	if err := errors.Join(cfg.Validate(), apiserver.ValidateHosts(c.APIHosts)); err != nil {
		return cfg, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

// apiRunner serves the HTTP API on ln until ctx ends (and closes ln),
// with /metrics beside it (a viewer token, as every GET).
// ready, if not nil, receives the address listened on.
func (a *app) apiRunner(cli *clientv3.Client, nc *nats.Conn, ln net.Listener, metrics prometheus.Gatherer, ready func(string)) func(context.Context) error {
	return func(ctx context.Context) error {
		defer ln.Close()
		httpCfg, err := a.httpConfig()
		if err != nil {
			return err
		}
		srv := apiserver.New(cli, nc, store.Keys{Prefix: a.cfg.Etcd.Prefix}, "aion.", a.log, time.Now, apiserver.WithHosts(a.cfg.Scheduler.APIHosts...))
		if err := srv.Start(ctx); err != nil {
			return err
		}
		defer srv.Close()
		if ready != nil {
			ready(ln.Addr().String())
		}
		mux := http.NewServeMux()
		mux.Handle(string(api.RouteMetrics), srv.Guard(api.RouteMetrics, promhttp.HandlerFor(metrics, promhttp.HandlerOpts{})))
		mux.Handle("/", srv.Handler())
		hs := httpCfg.Server(mux)
		ln = httpCfg.Listener(ln)
		hs.ErrorLog = zap.NewStdLog(a.log.Named("api"))
		go func() {
			<-ctx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(shutdownCtx)
		}()
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("API server: %w", err)
		}
		return nil
	}
}

func newSchedulerCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run a scheduler against an etcd and a NATS cluster",
		Long:  "A scheduler campaigns for leadership in etcd; the leader plans and dispatches runs. Run several for high availability.",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.httpConfig(); err != nil {
				return err
			}
			conn, err := a.clusterConn()
			if err != nil {
				return err
			}
			apiTLS, err := a.apiTLSConfig()
			if err != nil {
				return err
			}
			ln, err := listenAPI(a.cfg.Scheduler.Listen)
			if err != nil {
				return err
			}
			defer ln.Close()
			ln, scheme := serveTLS(ln, apiTLS)
			cli, nc, err := a.connect(cmd.Context(), conn)
			if err != nil {
				return err
			}
			defer cli.Close()
			defer nc.Close()
			reg := newRegistry()
			cfg := a.schedulerConfig()
			if offset, _ := cmd.Flags().GetDuration("clock-offset"); offset != 0 {
				// Fault injection: a scheduler whose clock is off.
				cfg.Now = func() time.Time { return time.Now().Add(offset) }
				a.log.Warn("the scheduler's clock is offset (fault injection)", zap.Duration("offset", offset))
			}
			s := scheduler.New(cfg, cli, nc, a.log, scheduler.WithMetrics(scheduler.NewMetrics(reg)))
			serve := a.apiRunner(cli, nc, ln, reg, func(addr string) {
				a.log.Info("API listening", zap.String("url", scheme+"://"+addr))
			})
			return runAll(cmd.Context(), s.Run, serve)
		},
	}
	clusterFlags(cmd)
	schedulerFlags(cmd)
	apiTLSFlags(cmd)
	cmd.Flags().Duration("clock-offset", 0, "fault injection: run the scheduler's clock this far off the machine's")
	_ = cmd.Flags().MarkHidden("clock-offset") // for the reliability scenarios, not for use
	return cmd
}

// handOffOn is ctx, ended with the cause executor.ErrHandOff when the
// process gets sig: the executor then exits leaving its runs to the next
// executor of its node (an upgrade). stop releases the signal.
func handOffOn(ctx context.Context, sig os.Signal) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, sig)
	go func() {
		select {
		case <-signals:
			cancel(executor.ErrHandOff)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(signals); cancel(nil) }
}

func newExecutorCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "executor",
		Short: "Run an executor node against an etcd and a NATS cluster",
		Long: `Run an executor node against an etcd and a NATS cluster.

SIGTERM or SIGINT stops it: its runs get SIGTERM (SIGKILL after the grace
period) and their results are recorded. SIGUSR2 hands its runs off: it exits
at once and leaves them going under the node's supervisor, for the next
executor started on the same node ID and output directory within the fence
(executor.fence) to adopt; this is how an executor is upgraded without
stopping its runs. Runs nobody adopts are killed when the fence passes and
counted lost.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.executorConfig()
			if err != nil {
				return err
			}
			conn, err := a.clusterConn()
			if err != nil {
				return err
			}
			cli, nc, err := a.connect(cmd.Context(), conn)
			if err != nil {
				return err
			}
			defer cli.Close()
			defer nc.Close()
			ctx, stop := handOffOn(cmd.Context(), syscall.SIGUSR2)
			defer stop()
			return executor.New(cfg, cli, nc, a.log).Run(ctx)
		},
	}
	clusterFlags(cmd)
	executorFlags(cmd, "/var/lib/aion/output")
	return cmd
}

// newRegistry is a Prometheus registry with the Go runtime and process
// collectors; the scheduler adds its own metrics, served at /metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
