package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// config is the part of the configuration shared by every command. Viper
// fills it from the config file, then AION_* environment variables, then
// flags; configs/aion.yaml documents every key.
type config struct {
	Log struct {
		Level  string `mapstructure:"level"`
		Format string `mapstructure:"format"`
	} `mapstructure:"log"`
	// Server is the scheduler API the client commands talk to.
	Server string `mapstructure:"server"`
	// Token is the API token's secret the client commands send; TokenFile
	// names a file holding it (see apiToken for the order).
	Token     string `mapstructure:"token"`
	TokenFile string `mapstructure:"token_file"`
	// Client is how the client commands connect to Server.
	Client struct {
		TLS tlsFiles `mapstructure:"tls"`
	} `mapstructure:"client"`
	Etcd struct {
		Endpoints []string `mapstructure:"endpoints"`
		Prefix    string   `mapstructure:"prefix"`
		TLS       tlsFiles `mapstructure:"tls"`
		Username  string   `mapstructure:"username"`
		Password  string   `mapstructure:"password"`
	} `mapstructure:"etcd"`
	NATS struct {
		URL      string   `mapstructure:"url"`
		TLS      tlsFiles `mapstructure:"tls"`
		User     string   `mapstructure:"user"`
		Password string   `mapstructure:"password"`
		Token    string   `mapstructure:"token"`
		NKey     string   `mapstructure:"nkey"`
		Creds    string   `mapstructure:"creds"`
	} `mapstructure:"nats"`
	Scheduler struct {
		ID           string        `mapstructure:"id"`
		Listen       string        `mapstructure:"listen"`
		SessionTTL   time.Duration `mapstructure:"session_ttl"`
		MisfireGrace time.Duration `mapstructure:"misfire_grace"`
		History      int           `mapstructure:"history"`
		// APIHosts are the API's names for the Host check (apiserver.WithHosts).
		APIHosts []string `mapstructure:"api_hosts"`
		// The HTTP server's limits (apiserver.HTTPConfig).
		APIReadHeaderTimeout time.Duration  `mapstructure:"api_read_header_timeout"`
		APIReadTimeout       time.Duration  `mapstructure:"api_read_timeout"`
		APIIdleTimeout       time.Duration  `mapstructure:"api_idle_timeout"`
		APIMaxHeaderBytes    int            `mapstructure:"api_max_header_bytes"`
		APIMaxConnections    int            `mapstructure:"api_max_connections"`
		TLS                  serverTLSFiles `mapstructure:"tls"`
	} `mapstructure:"scheduler"`
	Executor struct {
		NodeID            string        `mapstructure:"node_id"`
		Labels            string        `mapstructure:"labels"`
		Slots             int           `mapstructure:"slots"`
		OutputDir         string        `mapstructure:"output_dir"`
		Grace             time.Duration `mapstructure:"grace"`
		Fence             time.Duration `mapstructure:"fence"`
		Supervisor        string        `mapstructure:"supervisor"`
		OutputRetention   time.Duration `mapstructure:"output_retention"`
		OutputLimit       string        `mapstructure:"output_limit"`
		Docker            string        `mapstructure:"docker"`
		PullTimeout       time.Duration `mapstructure:"pull_timeout"`
		SecretsDir        string        `mapstructure:"secrets_dir"`
		PassEnv           []string      `mapstructure:"pass_env"`
		RunAs             []string      `mapstructure:"run_as"`
		ContainerMounts   []string      `mapstructure:"container_mounts"`
		ContainerNetworks []string      `mapstructure:"container_networks"`
		ContainerImages   []string      `mapstructure:"container_images"`
		ContainerCaps     []string      `mapstructure:"container_capabilities"`
	} `mapstructure:"executor"`
}

// app holds what the commands share once the configuration is read.
type app struct {
	v      *viper.Viper
	cfg    config
	log    *zap.Logger
	stdout io.Writer
	stderr io.Writer
	// tokenSource says where the client commands' token came from (for a 401).
	tokenSource string
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	a := &app{v: viper.New(), stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "aion",
		Short:         "Aion is a distributed cron scheduler",
		Long:          "Aion runs cron and ISO 8601 scheduled jobs, and graphs of dependent jobs, on a cluster of executors.\n\n" + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if a.log != nil {
				_ = a.log.Sync()
			}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	flags := root.PersistentFlags()
	flags.String("config", "", "config file (default: ./aion.yaml, then configs/aion.yaml, then /etc/aion/aion.yaml, if present)")
	flags.String("log-level", "info", "log level: debug, info, warn, error")
	flags.String("log-format", "console", "log format: console or json")
	flags.String("server", "http://127.0.0.1:8080", "address of the Aion API (any scheduler)")
	configFlag(flags, "log-level", "log.level")
	configFlag(flags, "log-format", "log.format")
	flags.String("token", "", "API token secret to send (visible to other users in the process list: prefer AION_TOKEN or --token-file)")
	flags.String("token-file", "", "file holding the API token secret (default: ./.aion/token, which aion dev writes, if present)")
	configFlag(flags, "server", "server")
	configFlag(flags, "token", "token")
	configFlag(flags, "token-file", "token_file")

	root.AddCommand(
		newValidateCommand(a),
		newExplainCommand(a),
		newVersionCommand(a),
		newDevCommand(a),
		newSchedulerCommand(a),
		newExecutorCommand(a),
		newBenchCommand(a),
		newTokenCommand(a),
	)
	root.AddCommand(clientCommands(a)...)
	return root
}

// configFlag marks a flag as the command-line source of a config key.
// Commands share keys (etcd.endpoints for scheduler, executor and dev), so
// flags are bound to viper only for the command that runs, in setup.
func configFlag(flags *pflag.FlagSet, name, key string) {
	// SetAnnotation only fails for an unknown flag, a programming error every test run catches.
	if err := flags.SetAnnotation(name, "config", []string{key}); err != nil {
		panic(err)
	}
}

// bindFlags binds the running command's annotated flags to their keys.
func (a *app) bindFlags(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if keys := f.Annotations["config"]; len(keys) == 1 && err == nil {
			err = a.v.BindPFlag(keys[0], f)
		}
	})
	return err
}

// setup reads the configuration and builds the logger before any command runs.
func (a *app) setup(cmd *cobra.Command) error {
	if err := a.bindFlags(cmd); err != nil {
		return err
	}
	a.v.SetEnvPrefix("AION")
	a.v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	a.v.AutomaticEnv()
	file, _ := cmd.Flags().GetString("config")
	if file == "" {
		file = findConfigFile()
	}
	if file != "" {
		a.v.SetConfigFile(file)
		if err := a.v.ReadInConfig(); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("config %s: %w", file, err)}
		}
	}
	if err := a.v.UnmarshalExact(&a.cfg); err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("config %s: %s", configName(file), strings.Join(strings.Fields(err.Error()), " "))}
	}
	log, err := newLogger(a.cfg.Log.Level, a.cfg.Log.Format, a.stderr)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("config %s: %w", configName(file), err)}
	}
	a.log = log
	return nil
}

// configSearchPath lists where the config file is looked for when --config
// is not given; only files named aion.yaml count.
var configSearchPath = []string{"aion.yaml", "configs/aion.yaml", "/etc/aion/aion.yaml"}

func findConfigFile() string {
	for _, p := range configSearchPath {
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

func configName(file string) string {
	if file == "" {
		return "(flags and environment)"
	}
	return file
}

// usageArgs makes a wrong number of arguments a usage error (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", cmd.CommandPath(), err)}
		}
		return nil
	}
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log.format: %q is not console or json", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}
