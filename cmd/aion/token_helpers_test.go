package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aionsched/aion/scheduler/api"
)

// devClient is a client of the aion dev at addr with the admin token it
// wrote into its data directory.
func devClient(t *testing.T, addr, dataDir string) *api.Client {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dataDir, "token"))
	if err != nil {
		t.Fatalf("aion dev's token: %v", err)
	}
	c, err := api.NewClient("http://"+addr, &http.Client{Timeout: api.DefaultTimeout}, api.WithToken(strings.TrimSpace(string(data))))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
