package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/cmd/harness/embedded"
	"github.com/aionsched/aion/executor"
	"github.com/aionsched/aion/scheduler"
	"github.com/aionsched/aion/scheduler/store"
)

// newDevCommand is `aion dev`: all of Aion in this process.
func newDevCommand(a *app) *cobra.Command {
	var dataDir, jobsDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Aion on this machine: embedded etcd and NATS, a scheduler and an executor",
		Long: "Dev runs everything in one process on a real embedded etcd (data in --data-dir) and NATS server,\n" +
			"keeps the output of runs in --data-dir too (unless --output-dir is given; a config file's\n" +
			"executor.output_dir is ignored),\n" +
			"applies the jobs in --jobs (adding, updating and removing to match the directory), and prints\n" +
			"each run as it happens. Ctrl-C stops it cleanly; state survives a restart.",
		Example: "  aion dev\n  aion dev --jobs /etc/aion/jobs --data-dir /tmp/aion",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.devOutputDir(dataDir, cmd.Flags().Changed("output-dir"))
			a.noteDevIgnoresSecurity()
			return a.dev(cmd.Context(), dataDir, jobsDir, cmd.Flags().Changed("jobs"))
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", ".aion", "where the embedded etcd keeps its data and runs keep their output (unless --output-dir)")
	cmd.Flags().StringVar(&jobsDir, "jobs", defaultDevJobs, "job files or directory to apply at start (without --jobs: ./testdata/jobs when it exists, else none)")
	schedulerFlags(cmd)
	executorFlags(cmd, "")
	return cmd
}

// dev starts the embedded etcd and NATS, applies the jobs in jobsDir
// (pruning), prints what it started and the jobs, then runs a scheduler,
// an executor and the API, printing every fire state change.
func (a *app) dev(ctx context.Context, dataDir, jobsDir string, jobsGiven bool) error {
	if _, err := a.httpConfig(); err != nil {
		return err
	}
	ln, err := listenAPI(a.cfg.Scheduler.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	jobs, apply, err := a.devJobs(jobsDir, jobsGiven)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	etcdSrv, natsSrv, err := a.startDevServers(ctx, dataDir)
	if err != nil {
		return err
	}
	defer etcdSrv.Close()
	defer natsSrv.Close()
	cli, nc, err := a.connect(ctx, plainConn(etcdSrv.Endpoint(), natsSrv.URL()))
	if err != nil {
		return err
	}
	defer cli.Close()
	defer nc.Close()

	a.setDevDefaults(dataDir)
	var res store.ApplyResult
	if apply {
		opt := store.ApplyOptions{Set: applySetName([]string{jobsDir}), Implicit: true, Prune: true}
		if res, err = store.Apply(ctx, cli, store.Keys{Prefix: a.cfg.Etcd.Prefix}, jobs, opt, time.Now()); err != nil {
			return err
		}
	}
	xcfg, err := a.executorConfig()
	if err != nil {
		return err
	}
	tokenFile, err := a.devToken(ctx, cli, dataDir)
	if err != nil {
		return err
	}
	events, err := a.printEvents(nc)
	if err != nil {
		return err
	}
	defer events.Unsubscribe()

	fmt.Fprintf(a.stdout, "Aion dev: etcd %s (data in %s, output in %s), NATS %s\n", etcdSrv.Endpoint(), dataDir, xcfg.OutputDir, natsSrv.URL())
	if err := a.printDevJobs(jobsDir, apply, res, jobs); err != nil {
		return err
	}
	return a.runDev(ctx, cli, nc, xcfg, ln, tokenFile)
}

// startDevServers starts the embedded etcd, which keeps its data in
// dataDir, and the embedded NATS server.
func (a *app) startDevServers(ctx context.Context, dataDir string) (*embedded.Etcd, *embedded.NATS, error) {
	etcdLog := zap.NewNop() // etcd's own logs are noise in dev; --log-level debug shows them
	if a.cfg.Log.Level == "debug" {
		etcdLog = a.log
	}
	etcdSrv, err := embedded.StartEtcd(ctx, embedded.EtcdConfig{Dir: filepath.Join(dataDir, "etcd"), MaxTxnOps: 100_000, Log: etcdLog})
	if err != nil {
		return nil, nil, err
	}
	natsSrv, err := embedded.StartNATS("")
	if err != nil {
		etcdSrv.Close()
		return nil, nil, err
	}
	return etcdSrv, natsSrv, nil
}

// setDevDefaults fills in what the configuration leaves unset: the
// default key prefix, node and scheduler ID "dev" (devOutputDir chose
// where output goes).
func (a *app) setDevDefaults(dataDir string) {
	if a.cfg.Etcd.Prefix == "" {
		a.cfg.Etcd.Prefix = store.DefaultPrefix
	}
	if a.cfg.Executor.NodeID == "" {
		a.cfg.Executor.NodeID = "dev"
	}
	if a.cfg.Scheduler.ID == "" {
		a.cfg.Scheduler.ID = "dev"
	}
}

// devOutputDir decides where dev keeps the output of runs: in
// dataDir/output, unless --output-dir was given on the command line
// (flagGiven). An executor.output_dir from a config file or the
// environment is for aion executor (configs/aion.yaml names
// /var/lib/aion/output): dev says it ignores it, so that --data-dir holds
// everything a dev instance writes.
func (a *app) devOutputDir(dataDir string, flagGiven bool) {
	if flagGiven {
		return
	}
	own := filepath.Join(dataDir, "output")
	if other := a.cfg.Executor.OutputDir; other != "" && filepath.Clean(other) != own {
		a.note(fmt.Sprintf("dev: executor.output_dir %s is ignored (from the config file or AION_EXECUTOR_OUTPUT_DIR): output goes to %s; --output-dir chooses another", other, own))
	}
	a.cfg.Executor.OutputDir = own
}

// runDev runs the scheduler, the executor and the API until ctx ends, then
// says so.
func (a *app) runDev(ctx context.Context, cli *clientv3.Client, nc *nats.Conn, xcfg executor.Config, ln net.Listener, tokenFile string) error {
	reg := newRegistry()
	s := scheduler.New(a.schedulerConfig(), cli, nc, a.log, scheduler.WithMetrics(scheduler.NewMetrics(reg)))
	x := executor.New(xcfg, cli, nc, a.log)
	serve := a.apiRunner(cli, nc, ln, reg, func(addr string) { a.printDevReady(addr, tokenFile) })
	runX, serveLonger := apiOutlivesExecutor(x.Run, serve)
	err := runAll(ctx, s.Run, runX, serveLonger)
	fmt.Fprintln(a.stdout, "stopped")
	return err
}

// apiLinger is how long dev's API answers after its executor stopped: a
// few polls of `aion run --wait`, which then sees how its run ended.
const apiLinger = 2 * time.Second

// apiOutlivesExecutor makes serve go on when dev stops until the executor
// has stopped its runs (SIGTERM, SIGKILL after the grace) and recorded
// them, and apiLinger more, so clients following a run see its end.
func apiOutlivesExecutor(runX, serve func(context.Context) error) (func(context.Context) error, func(context.Context) error) {
	stopped := make(chan struct{})
	wrappedX := func(ctx context.Context) error {
		defer close(stopped)
		return runX(ctx)
	}
	wrappedServe := func(ctx context.Context) error {
		serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		go func() {
			<-stopped
			select {
			case <-time.After(apiLinger):
			case <-serveCtx.Done():
			}
			cancel()
		}()
		return serve(serveCtx)
	}
	return wrappedX, wrappedServe
}

// printEvents prints every fire state change, so dev runs are visible.
func (a *app) printEvents(nc *nats.Conn) (*nats.Subscription, error) {
	var mu sync.Mutex
	return nc.Subscribe(store.EventsWildcard(a.schedulerConfig().SubjectPrefix), func(m *nats.Msg) {
		var ev store.FireEvent
		if json.Unmarshal(m.Data, &ev) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf("%s  %-9s  %s on %s", ev.At.Local().Format("15:04:05.000"), ev.State, ev.Fire, ev.Node)
		if ev.ExitCode != nil {
			line += fmt.Sprintf(" (exit %d)", *ev.ExitCode)
		}
		if ev.Summary != "" {
			line += ": " + ev.Summary
		}
		if ev.State.Final() {
			line += "  (output: aion logs " + ev.Fire.String() + ")"
		}
		fmt.Fprintln(a.stdout, line)
	})
}
