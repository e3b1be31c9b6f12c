package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

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
		c, err := a.apiClient()
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

// defaultTokenFile is where the CLI looks for a token last: the file aion
// dev writes into its default data directory.
const defaultTokenFile = ".aion/token"

// tokenSearch says where the CLI looks for its token, for errors.
const tokenSearch = "--token, AION_TOKEN or the config's token; else the file --token-file, AION_TOKEN_FILE or the config's token_file names; else ./" + defaultTokenFile + ", which aion dev writes"

// apiToken finds the token the client commands send: --token (AION_TOKEN,
// config token), else the file --token-file (AION_TOKEN_FILE, config
// token_file) names, else ./.aion/token when it exists (aion dev's default
// data directory). It says where it found it; none found is no error (the
// API answers 401, and clientExit says where tokens are looked for).
func (a *app) apiToken() (secret, source string, err error) {
	if a.cfg.Token != "" {
		return a.cfg.Token, "--token, AION_TOKEN or the config's token", nil
	}
	file := a.cfg.TokenFile
	if file == "" {
		if _, err := os.Stat(defaultTokenFile); err != nil {
			return "", "", nil
		}
		file = defaultTokenFile
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", &exitError{code: exitUsage, err: fmt.Errorf("token file: %w", err)}
	}
	secret = strings.TrimSpace(string(data))
	if secret == "" {
		return "", "", &exitError{code: exitUsage, err: fmt.Errorf("token file %s is empty", file)}
	}
	return secret, file, nil
}

// apiClient is the client of --server with the token apiToken finds.
func (a *app) apiClient() (*api.Client, error) {
	secret, source, err := a.apiToken()
	if err != nil {
		return nil, err
	}
	a.tokenSource = source
	return a.newAPIClient(api.WithToken(secret))
}

// newAPIClient is the client of --server (with client.tls: --ca, --cert,
// --key); a bad URL or TLS file is a usage error.
func (a *app) newAPIClient(opts ...api.ClientOption) (*api.Client, error) {
	transport, err := a.apiTransport()
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	c, err := api.NewClient(a.cfg.Server, &http.Client{Timeout: api.DefaultTimeout, Transport: transport}, opts...)
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
	case errors.As(err, &answer) && answer.Status == http.StatusUnauthorized:
		sent := "no token was found"
		if a.tokenSource != "" {
			sent = "the token sent came from " + a.tokenSource
		}
		return &exitError{code: exitAion, err: fmt.Errorf("%s (%s; the CLI looks in %s)", answer.Message, sent, tokenSearch)}
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
