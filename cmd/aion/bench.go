package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aionsched/aion/cmd/harness/bench"
)

// benchReport is what `aion bench -o json` prints.
type benchReport struct {
	Executors int `json:"executors"`
	// ExecutorProcesses says the executors ran as processes, not in the
	// process holding etcd and the scheduler.
	ExecutorProcesses bool                   `json:"executor_processes"`
	Slots             int                    `json:"slots_per_executor"`
	Lateness          []bench.LatenessResult `json:"lateness,omitempty"`
	// Ceiling is the highest measured rate that every nominal time met
	// with p99 lateness under 100 ms (0: none did).
	Ceiling int                 `json:"ceiling_fires_per_second"`
	Manual  *bench.ManualResult `json:"manual_trigger,omitempty"`
	Scale   []bench.ScaleResult `json:"scale,omitempty"`
}

// benchOptions are the flags of aion bench.
type benchOptions struct {
	rates             []int
	warmup, measure   time.Duration
	executors, slots  int
	manualRuns        int
	asJSON            bool
	cpuProfile        string
	scale             []int
	executorProcesses bool
	schedulerEnv      []string
	ttl               time.Duration
	format            *string // -o; set by newBenchCommand, read when the command runs
}

func newBenchCommand(a *app) *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure fire lateness, manual trigger latency, and the cost of many jobs",
		Long: `bench starts an embedded etcd and NATS, one scheduler and several executors in
this process, and measures, from the fire records:

  - lateness (claim, the moment the process starts, minus the nominal time) of
    every-second /bin/true jobs at each rate of fires per second (--rates);
  - manual trigger latency: a run request written to etcd (what aion run does)
    to the start of its process (--manual);
  - with --scale N: N registered yearly jobs (plus one every-second job) on a
    fresh etcd, two "aion scheduler" processes of this binary: apply time, the
    leader's RSS and idle CPU, then SIGKILL the leader and time the takeover.

Figures go in BENCHMARKS.md with the command line that produced them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(a, cmd)
		},
	}
	o.format = outputFlag(cmd)
	o.addFlags(cmd.Flags())
	return cmd
}

// addFlags defines the flags into o.
func (o *benchOptions) addFlags(f *pflag.FlagSet) {
	f.IntSliceVar(&o.rates, "rates", []int{1, 100, 1000}, "fires per second to measure lateness at (each is that many every-second jobs; 0: none)")
	f.DurationVar(&o.warmup, "warmup", 3*time.Second, "time to run before measuring each rate")
	f.DurationVar(&o.measure, "measure", 10*time.Second, "measured time per rate")
	f.IntVar(&o.executors, "executors", 4, "executors in the process")
	f.IntVar(&o.slots, "slots", 256, "slots per executor")
	f.BoolVar(&o.executorProcesses, "executor-processes", true, "run the executors as aion executor processes (as in production) rather than in the bench process")
	f.IntVar(&o.manualRuns, "manual", 100, "manual triggers to time, one after another (0: none)")
	f.IntSliceVar(&o.scale, "scale", nil, "numbers of registered jobs to measure scheduler memory, idle CPU and takeover with (e.g. 100000,1000000)")
	f.DurationVar(&o.ttl, "session-ttl", 5*time.Second, "session TTL of the scheduler processes in the scale runs")
	f.StringArrayVar(&o.schedulerEnv, "scheduler-env", nil, "KEY=VALUE added to the environment of the scheduler processes in the scale runs (e.g. GOMEMLIMIT=900MiB)")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	if err := f.MarkDeprecated("json", "use -o json"); err != nil {
		panic(err) // the flag is defined just above
	}
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (go tool pprof) to this file")
}

// run measures what the flags ask for: lateness and manual triggers on one
// stack, then each scale on a stack of its own.
func (o *benchOptions) run(a *app, cmd *cobra.Command) (err error) {
	asJSON := o.asJSON || *o.format == formatJSON
	if o.cpuProfile != "" {
		stop, profErr := startCPUProfile(o.cpuProfile)
		if profErr != nil {
			return profErr
		}
		defer func() { // a profile that cannot be closed fails the run
			if stopErr := stop(); err == nil {
				err = stopErr
			}
		}()
	}
	report := benchReport{Executors: o.executors, Slots: o.slots, ExecutorProcesses: o.executorProcesses}
	if slices.ContainsFunc(o.rates, func(r int) bool { return r > 0 }) || o.manualRuns > 0 {
		if err := benchLateness(a, cmd, &report, o.rates, o.warmup, o.measure, o.manualRuns, asJSON); err != nil {
			return err
		}
	}
	for _, n := range o.scale {
		res, err := benchScale(cmd, n, o.ttl, o.schedulerEnv)
		if err != nil {
			return err
		}
		report.Scale = append(report.Scale, res)
		if !asJSON {
			fmt.Fprintln(a.stdout, res)
		}
	}
	if asJSON {
		return a.printJSON(report)
	}
	return nil
}

// startCPUProfile profiles this process into the file at path until stop,
// which closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// benchScale measures one number of registered jobs on a fresh stack whose
// schedulers are processes of this binary.
func benchScale(cmd *cobra.Command, n int, ttl time.Duration, env []string) (bench.ScaleResult, error) {
	bin, err := os.Executable()
	if err != nil {
		return bench.ScaleResult{}, err
	}
	stack, err := bench.Start(cmd.Context(), bench.StackConfig{Executors: 1, Slots: 16, NoScheduler: true})
	if err != nil {
		return bench.ScaleResult{}, err
	}
	defer stack.Close()
	return bench.Scale(cmd.Context(), stack, bin, n, ttl, env)
}

// benchLateness measures lateness at each rate, then manual triggers, on
// one in-process stack.
func benchLateness(a *app, cmd *cobra.Command, report *benchReport, rates []int, warmup, measure time.Duration, manualRuns int, asJSON bool) error {
	ctx := cmd.Context()
	cfg := bench.StackConfig{Executors: report.Executors, Slots: report.Slots, Log: a.log}
	if report.ExecutorProcesses {
		bin, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.ExecutorBinary = bin
	}
	stack, err := bench.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer stack.Close()
	if !asJSON {
		where := "in this process"
		if report.ExecutorProcesses {
			where = "as processes"
		}
		fmt.Fprintf(a.stdout, "stack: embedded etcd (%s) + NATS and 1 scheduler in this process, %d executors × %d slots %s\n",
			stack.EtcdURL, report.Executors, report.Slots, where)
	}
	if manualRuns > 0 {
		res, err := bench.Manual(ctx, stack, manualRuns)
		if err != nil {
			return err
		}
		report.Manual = &res
		if !asJSON {
			fmt.Fprintln(a.stdout, res)
		}
	}
	for _, rate := range rates {
		if rate <= 0 {
			continue
		}
		res, err := bench.Lateness(ctx, stack, rate, warmup, measure)
		if err != nil {
			return err
		}
		report.Lateness = append(report.Lateness, res)
		if !asJSON {
			fmt.Fprintln(a.stdout, res)
		}
	}
	for _, r := range report.Lateness {
		if r.Missed == 0 && r.Lateness.P99 < 100*time.Millisecond && r.Rate > report.Ceiling {
			report.Ceiling = r.Rate
		}
	}
	if len(report.Lateness) > 0 && !asJSON {
		fmt.Fprintf(a.stdout, "ceiling: %d fires/s (the highest rate measured with nothing missed and p99 lateness under 100 ms)\n", report.Ceiling)
	}
	return nil
}
