package apiserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aionsched/aion/cmd/harness/clustertest"
	"github.com/aionsched/aion/scheduler/api"
)

// withSet is an apply request of the files as apply set name.
func withSet(name string, req api.ApplyRequest) api.ApplyRequest {
	req.Set = name
	return req
}

// TestAPI_PruneDeletesOnlyItsOwnSet: a set applied with prune, a job applied
// by hand, the set applied again with prune: the hand-applied job stays. An
// apply of one unrelated file with prune deletes nothing of the other set.
func TestAPI_PruneDeletesOnlyItsOwnSet(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	dir := withSet("jobs", files("jobs/alpha.yaml", alphaYAML, "jobs/more.yaml", betaGammaYAML))
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply?prune=true", dir, http.StatusOK)
	hand := files("extra.yaml", "name: extra\nschedule: manual\ncommand: echo extra\n")
	res := callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", hand, http.StatusOK)
	checkResult(t, res, []string{"extra"}, nil, nil, nil)

	res = callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply?prune=true", dir, http.StatusOK)
	checkResult(t, res, nil, nil, []string{"alpha", "beta", "gamma"}, nil)
	if !keyExists(t, c, c.Keys.Job("extra")) {
		t.Fatal("the hand-applied job extra was pruned by set jobs")
	}
	if len(res.Kept) != 1 || res.Kept[0] != "extra" || res.Owners["extra"] != "extra.yaml" {
		t.Errorf("kept %q, owners %v; want extra kept, of set extra.yaml", res.Kept, res.Owners)
	}

	before := snapshot(t, c)
	res = callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply?prune=true", hand, http.StatusOK)
	checkResult(t, res, nil, nil, []string{"extra"}, nil)
	assertUnchanged(t, c, before, "a one-file set applied with prune")

	// prune_all deletes what is in no file, of any set.
	res = callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply?prune_all=true", hand, http.StatusOK)
	checkResult(t, res, nil, nil, []string{"extra"}, []string{"alpha", "beta", "gamma"})
}

// TestAPI_ParentsMayBeStoredJobs: a child applies alone when its parent is
// stored; a missing parent, a cycle through stored jobs and a prune of a
// parent stored children need are refused, and change nothing.
func TestAPI_ParentsMayBeStoredJobs(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", withSet("parents", files("alpha.yaml", alphaYAML, "beta.yaml", betaYAML)), http.StatusOK)
	child := files("gamma.yaml", "name: gamma\nparents: [alpha]\ncommand: echo gamma\n")
	res := callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", child, http.StatusOK)
	checkResult(t, res, []string{"gamma"}, nil, nil, nil)

	before := snapshot(t, c)
	for what, tc := range map[string]struct {
		query  string
		req    api.ApplyRequest
		status int
		want   string
	}{
		"missing parent": {"", files("delta.yaml", "name: delta\nparents: [nowhere]\ncommand: echo d\n"),
			http.StatusBadRequest, `delta.yaml:2:11: parents[0]: unknown job "nowhere"`},
		"cycle through stored jobs": {"", withSet("parents", files("alpha.yaml", "name: alpha\nparents: [gamma]\ncommand: echo a\n", "beta.yaml", betaYAML)),
			http.StatusBadRequest, `alpha.yaml:2:10: parents: dependency cycle: alpha -> gamma -> alpha`},
		"prune of a stored child's parent": {"?prune=true", withSet("parents", files("beta.yaml", betaYAML)),
			http.StatusConflict, "alpha is a parent of gamma"},
	} {
		status, body := call(t, tok, "POST", base+"/v1/apply"+tc.query, tc.req)
		var answer api.ErrorResponse
		if err := json.Unmarshal(body, &answer); err != nil {
			t.Fatalf("%s: %d %s: %v", what, status, body, err)
		}
		text := answer.Error + "\n" + strings.Join(answer.Problems, "\n")
		if status != tc.status || !strings.Contains(text, tc.want) {
			t.Errorf("%s: %d %s; want %d with %q", what, status, text, tc.status, tc.want)
		}
	}
	assertUnchanged(t, c, before, "refused applies")
}

// TestAPI_BackfillDatesAndBadRangesAreNamed: to_date includes its whole day
// in the job's zone; a bad date, or both forms of one end, is a 400 naming
// the field, and changes nothing. So is a bad apply set name.
func TestAPI_BackfillDatesAndBadRangesAreNamed(t *testing.T) {
	c := clustertest.Start(t)
	base, tok := serve(t, c, time.Now)
	callJSON[api.ApplyResponse](t, tok, "POST", base+"/v1/apply", files("jobs.yaml", "name: report\nschedule: \"0 22 * * *\"\ntimezone: Europe/Berlin\ncommand: \"true\"\n"), http.StatusOK)
	req := api.BackfillRequest{FromDate: "2026-11-01", ToDate: "2026-11-07", DryRun: true}
	res := callJSON[api.BackfillResponse](t, tok, "POST", base+"/v1/jobs/report/backfill", req, http.StatusOK)
	if len(res.Times) != 7 || res.Times[6].Fire != "report@2026-11-07T21:00:00Z" {
		t.Errorf("from_date 2026-11-01 to_date 2026-11-07 at 22:00 Berlin: %+v; want 7 times, the last report@2026-11-07T21:00:00Z", res.Times)
	}
	before := snapshot(t, c)
	for _, tc := range []struct {
		target string
		body   any
		want   string
	}{
		{"/v1/jobs/report/backfill", api.BackfillRequest{FromDate: "2026-11-01", ToDate: "2026-11-31"}, `to_date: "2026-11-31" is not a date`},
		{"/v1/jobs/report/backfill", api.BackfillRequest{FromDate: "2026-11-01", From: time.Now(), ToDate: "2026-11-02"}, "want one of from"},
		{"/v1/jobs/report/backfill", api.BackfillRequest{FromDate: "2026-11-07", ToDate: "2026-11-01"}, "want from <= to"},
		{"/v1/apply", withSet("bad\nname", files("x.yaml", betaYAML)), `set: "bad\nname": want printable UTF-8`},
	} {
		var answer api.ErrorResponse
		status, body := call(t, tok, "POST", base+tc.target, tc.body)
		if err := json.Unmarshal(body, &answer); err != nil || status != http.StatusBadRequest || !strings.Contains(answer.Error, tc.want) {
			t.Errorf("POST %s %+v: %d %s; want 400 with %q", tc.target, tc.body, status, body, tc.want)
		}
	}
	assertUnchanged(t, c, before, "bad backfills and applies")
}
