package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/aionsched/aion/scheduler/store"
)

// devTokenName names the admin token aion dev makes.
const devTokenName = "dev-admin"

// devToken makes sure dataDir/token holds the secret of a valid admin
// token and returns the file's path: on a restart it is the token made
// before; on the first start (or when the file's token is no longer
// valid) dev makes one, named dev-admin (replacing an older dev-admin),
// and writes its secret there (0600). The CLI finds ./.aion/token by
// itself, so with the default --data-dir no flag is needed.
func (a *app) devToken(ctx context.Context, cli *clientv3.Client, dataDir string) (string, error) {
	path := filepath.Join(dataDir, "token")
	keys := store.Keys{Prefix: a.cfg.Etcd.Prefix}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if data, err := os.ReadFile(path); err == nil {
		t, found, err := store.LookupToken(ctx, cli, keys, strings.TrimSpace(string(data)))
		if err != nil {
			return "", fmt.Errorf("dev token %s: %w", path, err)
		}
		if found && t.Role == "admin" {
			return path, os.Chmod(path, 0o600)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("dev token: %w", err)
	}
	secret, err := store.NewTokenSecret()
	if err != nil {
		return "", err
	}
	if err := store.RevokeToken(ctx, cli, keys, devTokenName); err != nil && !errors.Is(err, store.ErrNoSuchToken) {
		return "", fmt.Errorf("dev token: replace the old one: %w", err)
	}
	t := store.Token{Name: devTokenName, Role: "admin", CreatedAt: time.Now().UTC(), CreatedBy: "aion dev"}
	if err := store.CreateToken(ctx, cli, keys, t, secret); err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	// Written to a new file and renamed, so the file is never readable by
	// others, nor half written.
	tmp, err := os.CreateTemp(dataDir, ".token-*")
	if err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up after a failure
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", fmt.Errorf("dev token: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("dev token: write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	return path, nil
}
