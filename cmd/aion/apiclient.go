package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
)

// clientCommands are the commands that talk to the API of a running
// scheduler (--server), through package api's Client.
func clientCommands(a *app) []*cobra.Command {
	cmds := []*cobra.Command{
		newApplyCommand(a),
		newJobsCommand(a),
		newJobCommand(a),
		newRunCommand(a),
		newHistoryCommand(a),
		newLogsCommand(a),
		newNodesCommand(a),
		newEnableCommand(a, "enable", false),
		newEnableCommand(a, "disable", true),
		newDeleteCommand(a),
		newKillCommand(a),
		newBackfillCommand(a),
		newPauseCommand(a, true),
		newPauseCommand(a, false),
	}
	a.addCompletion(cmds)
	for _, cmd := range cmds {
		clientTLSFlags(cmd)
	}
	return cmds
}

// clientRun builds a client command's RunE: it makes the client of
// --server and turns the client's errors into exits (clientExit).
func (a *app) clientRun(run func(ctx context.Context, c *api.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.newAPIClient()
		if err != nil {
			return err
		}
		err = run(cmd.Context(), c, args)
		if len(args) > 0 && takesJobName(cmd) && errors.Is(err, api.ErrNotFound) {
			err = suggestJob(cmd.Context(), c, args[0], err)
		}
		return a.clientExit(err)
	}
}

// newAPIClient is the client of --server (with client.tls: --ca, --cert,
// --key); a bad URL or TLS file is a usage error.
func (a *app) newAPIClient() (*api.Client, error) {
	transport, err := a.apiTransport()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	c, err := api.NewClient(a.cfg.Server, &http.Client{Timeout: api.DefaultTimeout, Transport: transport})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("--server %w", err)}
	}
	return c, nil
}

// clientExit is where the errors of package api become exits, for every
// command: an answer of the API is reported as the server gave it (its
// problems on stderr, one a line), no answer says where the API was looked
// for; both exit with exitAion. Other errors pass as they are.
func (a *app) clientExit(err error) error {
	var answer *api.Error
	var unreachable *api.UnreachableError
	switch {
	case errors.As(err, &answer):
		for _, p := range answer.Problems {
			fmt.Fprintln(a.stderr, p)
		}
		return &exitError{code: exitAion, err: errors.New(answer.Message)}
	case errors.As(err, &unreachable):
		if hint := tlsHint(err, "the API", clientTLSSource); hint != "" {
			return &exitError{code: exitAion, err: fmt.Errorf("%w; %s", unreachable, hint)}
		}
		return &exitError{code: exitAion, err: fmt.Errorf("%w (is `aion dev` or a scheduler running? set --server)", unreachable)}
	}
	return err
}

// parseFireID reads a FIRE-ID argument; a bad one is a usage error,
// reported after prefix (when not empty).
func parseFireID(prefix, arg string) (api.FireID, error) {
	id, err := api.ParseFireID(arg)
	switch {
	case err != nil && prefix != "":
		return api.FireID{}, &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", prefix, err)}
	case err != nil:
		return api.FireID{}, &exitError{code: exitUsage, err: err}
	}
	return id, nil
}

// whoAmI names the person asking for a run, for the fire record.
func whoAmI() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil {
		return name + "@" + host
	}
	return name
}
