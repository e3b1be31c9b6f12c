package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aionsched/aion/scheduler/api"
)

// TestClient_BackfillDatesAreWholeDaysInTheJobsZone: --to DATE includes
// that day, and both dates are days of the job's zone, not of UTC.
func TestClient_BackfillDatesAreWholeDaysInTheJobsZone(t *testing.T) {
	c := startCluster(t, false)
	dir := t.TempDir()
	writeJobs(t, dir, map[string]string{"jobs.yaml": `jobs:
  - name: late
    schedule: "30 23 * * *"
    timezone: America/New_York
    command: echo late
  - name: early
    schedule: "30 0 * * *"
    timezone: Asia/Tokyo
    command: echo early
`})
	if code, _, stderr := c.aion(t, "apply", "-f", dir); code != 0 {
		t.Fatalf("apply: exit %d\nstderr:\n%s", code, stderr)
	}
	for job, want := range map[string][]string{
		// 23:30 in New York on Nov 3 is 04:30 UTC on Nov 4: the day --to names.
		"late": {"2026-11-02T04:30:00Z", "2026-11-03T04:30:00Z", "2026-11-04T04:30:00Z"},
		// 00:30 in Tokyo on Nov 1 is 15:30 UTC on Oct 31: the day --from names.
		"early": {"2026-10-31T15:30:00Z", "2026-11-01T15:30:00Z", "2026-11-02T15:30:00Z"},
	} {
		code, stdout, stderr := c.aion(t, "backfill", job, "--from", "2026-11-01", "--to", "2026-11-03", "--dry-run", "-o", "json")
		if code != 0 {
			t.Fatalf("backfill %s: exit %d\nstderr:\n%s", job, code, stderr)
		}
		var res api.BackfillResponse
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("backfill %s -o json: %v\n%s", job, err, stdout)
		}
		var got []string
		for _, bt := range res.Times {
			got = append(got, bt.At.UTC().Format(time.RFC3339))
		}
		if !slices.Equal(got, want) {
			t.Errorf("backfill %s --from 2026-11-01 --to 2026-11-03: times %q, want %q", job, got, want)
		}
	}
}
