package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// newTokenCommand is `aion token`: make, list and revoke API tokens.
func newTokenCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make, list and revoke API tokens",
		Long: "Every API request but GET /healthz carries a token (Authorization: Bearer), whose role says what\n" +
			"it may do: viewer reads, operator also runs, kills, pauses, resumes, backfills, enables and\n" +
			"disables jobs, admin also applies, deletes and prunes jobs and manages tokens. A token's secret\n" +
			"is shown once, when it is made; etcd keeps only its SHA-256 hash.",
		Args: usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newTokenCreateCommand(a), newTokenListCommand(a), newTokenRevokeCommand(a))
	return cmd
}

func newTokenCreateCommand(a *app) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "create TOKEN-NAME --role viewer|operator|admin",
		Short: "Make a token and print its secret (shown this once)",
		Long: "Create makes a token through the API, with an admin token. With --etcd it writes the token\n" +
			"straight into etcd instead, without the API: that is how the first admin token of a cluster is\n" +
			"made (whoever can write to etcd can do anything in Aion already).",
		Example: "  aion token create ci --role operator\n" +
			"  aion token create first-admin --role admin --etcd http://127.0.0.1:2379",
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	cmd.Flags().StringVar(&role, "role", "", "viewer, operator or admin (required)")
	cmd.Flags().StringSlice("etcd", nil, "write the token straight into this etcd cluster, without the API (with the etcd TLS and credential flags, or etcd.* in the config)")
	cmd.Flags().String("prefix", store.DefaultPrefix, "etcd key prefix (with --etcd)")
	configFlag(cmd.Flags(), "etcd", "etcd.endpoints")
	configFlag(cmd.Flags(), "prefix", "etcd.prefix")
	etcdSecurityFlags(cmd)
	format := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r, err := api.ParseRole(role)
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("--role: %w", err)}
		}
		if !store.ValidTokenName(args[0]) {
			return &exitError{code: exitUsage, err: fmt.Errorf("%q: %s", args[0], store.TokenNameRule)}
		}
		req := api.CreateTokenRequest{Name: args[0], Role: r}
		var res api.CreateTokenResponse
		if cmd.Flags().Changed("etcd") {
			conn, err := a.etcdConn()
			if err != nil {
				return err
			}
			if res, err = a.createTokenInEtcd(cmd.Context(), conn, req); err != nil {
				return err
			}
		} else {
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			if res, err = c.CreateToken(cmd.Context(), req); err != nil {
				return a.clientExit(err)
			}
		}
		return a.render(*format, res, func() error {
			_, err := fmt.Fprintf(a.stdout, "token %s (%s) created; its secret, shown only now:\n%s\n", res.Name, res.Role, res.Secret)
			return err
		})
	}
	return cmd
}

// createTokenInEtcd makes a token straight in etcd (aion token create
// --etcd), recorded as created by "etcd". It reaches etcd as a scheduler
// does: over TLS and with the credentials the configuration gives.
func (a *app) createTokenInEtcd(ctx context.Context, conn clusterConn, req api.CreateTokenRequest) (api.CreateTokenResponse, error) {
	cli, err := a.connectEtcd(ctx, conn)
	if err != nil {
		return api.CreateTokenResponse{}, &exitError{code: exitAion, err: err}
	}
	defer cli.Close()
	secret, err := store.NewTokenSecret()
	if err != nil {
		return api.CreateTokenResponse{}, err
	}
	keys := store.Keys{Prefix: conn.etcdPrefix}
	t := store.Token{Name: req.Name, Role: string(req.Role), CreatedAt: time.Now().UTC(), CreatedBy: "etcd"}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := store.CreateToken(ctx, cli, keys, t, secret); err != nil {
		return api.CreateTokenResponse{}, &exitError{code: exitAion, err: fmt.Errorf("etcd %v: %w", conn.etcdEndpoints, err)}
	}
	info := api.TokenInfo{Name: t.Name, Role: req.Role, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy}
	return api.CreateTokenResponse{TokenInfo: info, Secret: secret}, nil
}

func newTokenListCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never their secrets)",
		Args:  usageArgs(cobra.NoArgs),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, _ []string) error {
		list, err := c.ListTokens(ctx)
		if err != nil {
			return err
		}
		return a.render(*format, list, func() error {
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tCREATED\tBY")
			for _, t := range list.Tokens {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Role, t.CreatedAt.Local().Format(time.DateTime), orDash(t.CreatedBy))
			}
			return w.Flush()
		})
	})
	return cmd
}

func newTokenRevokeCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke TOKEN-NAME",
		Short: "Revoke a token: requests with it are refused from now on",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	format := outputFlag(cmd)
	cmd.RunE = a.clientRun(func(ctx context.Context, c *api.Client, args []string) error {
		res, err := c.RevokeToken(ctx, args[0])
		if err != nil {
			return err
		}
		return a.render(*format, res, func() error {
			_, err := fmt.Fprintf(a.stdout, "token %s revoked\n", res.Revoked)
			return err
		})
	})
	return cmd
}
