package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// TestClient_EveryMethodCallsItsRoute checks the requests the Client's
// methods send: each reaches the pattern of its route (the mux of the
// recorder matches them as the server's does), and every route is called.
// The answers are empty objects: what is checked is the request.
func TestClient_EveryMethodCallsItsRoute(t *testing.T) {
	var (
		mu     sync.Mutex
		called []Route
	)
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		mux.HandleFunc(string(rt), func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			called = append(called, rt)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}\n"))
		})
	}
	hs := httptest.NewServer(mux)
	defer hs.Close()
	c, err := NewClient(hs.URL, hs.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := FireID{Job: "backup", Suffix: "after-extract@2026-11-24T02:00:00Z"}
	calls := []struct {
		want Route
		call func() error
	}{
		{RouteApply, func() error { _, err := c.Apply(ctx, []File{{Name: "a.yaml"}}, ApplyOptions{Prune: true}); return err }},
		{RouteListJobs, func() error { _, err := c.ListJobs(ctx); return err }},
		{RouteGetJob, func() error { _, err := c.GetJob(ctx, "backup"); return err }},
		{RouteDeleteJob, func() error { _, err := c.DeleteJob(ctx, "backup", true); return err }},
		{RouteRunJob, func() error { _, err := c.Run(ctx, "backup", RunRequest{}); return err }},
		{RouteEnableJob, func() error { _, err := c.Enable(ctx, "backup"); return err }},
		{RouteDisableJob, func() error { _, err := c.Disable(ctx, "backup"); return err }},
		{RouteListFires, func() error { _, err := c.Fires(ctx, "backup", 5); return err }},
		{RouteBackfill, func() error { _, err := c.Backfill(ctx, "backup", BackfillRequest{}); return err }},
		{RoutePauseJob, func() error { _, err := c.Pause(ctx, "backup", PauseRequest{}); return err }},
		{RouteResumeJob, func() error { _, err := c.Resume(ctx, "backup", PauseRequest{}); return err }},
		{RouteRecentFires, func() error { _, err := c.RecentFires(ctx, 5); return err }},
		{RouteGetFire, func() error { _, err := c.Fire(ctx, id); return err }},
		{RouteGetLog, func() error { _, err := c.Log(ctx, id, 0); return err }},
		{RouteKillFire, func() error { _, err := c.Kill(ctx, id, KillRequest{}); return err }},
		{RouteListNodes, func() error { _, err := c.Nodes(ctx); return err }},
		{RouteCreateToken, func() error {
			_, err := c.CreateToken(ctx, CreateTokenRequest{Name: "ci", Role: RoleViewer})
			return err
		}},
		{RouteListTokens, func() error { _, err := c.ListTokens(ctx); return err }},
		{RouteRevokeToken, func() error { _, err := c.RevokeToken(ctx, "ci"); return err }},
		{RouteHealth, func() error { return c.Health(ctx) }},
	}
	for _, cl := range calls {
		mu.Lock()
		called = called[:0]
		mu.Unlock()
		if err := cl.call(); err != nil {
			t.Errorf("%s: %v", cl.want, err)
			continue
		}
		mu.Lock()
		if !slices.Equal(called, []Route{cl.want}) {
			t.Errorf("the call of %s reached %v", cl.want, called)
		}
		mu.Unlock()
	}
	if len(calls) != len(Routes()) {
		t.Errorf("%d calls checked for %d routes", len(calls), len(Routes()))
	}
}
