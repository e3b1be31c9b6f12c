package api

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
)

// ApplyOptions are the apply set and query parameters of an apply.
type ApplyOptions struct {
	Set            string // the apply set, named: jobs of other sets are conflicts
	DefaultSet     string // the set when Set is empty (empty: the server names it after the files)
	Prune          bool   // delete the stored jobs of the set that are in none of the files
	PruneAll       bool   // delete every stored job in none of the files, of any set or none
	ForceConflicts bool   // move jobs of other sets into this one instead of refusing
	DryRun         bool   // say what would change; write nothing
}

// Apply sends job files; the server stores the whole set, or nothing when
// there is any problem (then the *Error lists them in Problems).
func (c *Client) Apply(ctx context.Context, files []File, opt ApplyOptions) (ApplyResponse, error) {
	query := url.Values{}
	if opt.Prune {
		query.Set("prune", "true")
	}
	if opt.PruneAll {
		query.Set("prune_all", "true")
	}
	if opt.ForceConflicts {
		query.Set("force_conflicts", "true")
	}
	if opt.DryRun {
		query.Set("dry_run", "true")
	}
	var res ApplyResponse
	if err := c.do(ctx, call{route: RouteApply, query: query, body: ApplyRequest{Files: files, Set: opt.Set, DefaultSet: opt.DefaultSet}, out: &res}); err != nil {
		return res, fmt.Errorf("apply %d files: %w", len(files), err)
	}
	return res, nil
}

// ListJobs lists every stored job, sorted by name, reading them page by
// page (ListJobsPage).
func (c *Client) ListJobs(ctx context.Context) (JobList, error) {
	return c.ListAllJobs(ctx, JobQuery{Limit: MaxJobLimit})
}

// ListAllJobs lists every job that q's filters select, from q.After on,
// reading pages of q.Limit jobs (DefaultJobLimit when 0) until the last.
func (c *Client) ListAllJobs(ctx context.Context, q JobQuery) (JobList, error) {
	if q.Limit == 0 {
		q.Limit = DefaultJobLimit
	}
	var all JobList
	for {
		page, err := c.ListJobsPage(ctx, q)
		if err != nil {
			return all, err
		}
		all.Jobs = append(all.Jobs, page.Jobs...)
		if page.Next == "" {
			return all, nil
		}
		q.After = page.Next
	}
}

// ListJobsPage lists one page of the stored jobs that match q, sorted by
// name; its Next is the q.After of the next page.
func (c *Client) ListJobsPage(ctx context.Context, q JobQuery) (JobList, error) {
	query := url.Values{}
	for key, v := range map[string]string{"state": q.State, "name": q.Name, "after": q.After} {
		if v != "" {
			query.Set(key, v)
		}
	}
	for _, l := range q.Labels {
		query.Add("label", l)
	}
	if q.Limit != 0 {
		query.Set("limit", strconv.Itoa(q.Limit))
	}
	var list JobList
	if err := c.do(ctx, call{route: RouteListJobs, query: query, out: &list}); err != nil {
		return list, fmt.Errorf("list jobs: %w", err)
	}
	return list, nil
}

// GetJob returns a job's definition, state, next runs and recent fires.
func (c *Client) GetJob(ctx context.Context, name string) (JobDetail, error) {
	var d JobDetail
	if err := c.do(ctx, call{route: RouteGetJob, values: []string{name}, out: &d}); err != nil {
		return d, fmt.Errorf("get job %s: %w", name, err)
	}
	return d, nil
}

// DeleteJob deletes a job (its fire history stays); with cascade, also the
// jobs that depend on it.
func (c *Client) DeleteJob(ctx context.Context, name string, cascade bool) (DeleteResponse, error) {
	var query url.Values
	if cascade {
		query = url.Values{"cascade": {"true"}}
	}
	var res DeleteResponse
	if err := c.do(ctx, call{route: RouteDeleteJob, values: []string{name}, query: query, out: &res}); err != nil {
		return res, fmt.Errorf("delete job %s: %w", name, err)
	}
	return res, nil
}

// Run asks for a run of a job now; the answer names the fire it will be.
func (c *Client) Run(ctx context.Context, name string, req RunRequest) (RunResponse, error) {
	var res RunResponse
	if err := c.do(ctx, call{route: RouteRunJob, values: []string{name}, body: req, out: &res}); err != nil {
		return res, fmt.Errorf("run job %s: %w", name, err)
	}
	return res, nil
}

// Enable lets a disabled job's schedule run again.
func (c *Client) Enable(ctx context.Context, name string) (EnableResponse, error) {
	return c.setDisabled(ctx, RouteEnableJob, "enable", name)
}

// Disable stops a job's scheduled runs until it is enabled or applied again.
func (c *Client) Disable(ctx context.Context, name string) (EnableResponse, error) {
	return c.setDisabled(ctx, RouteDisableJob, "disable", name)
}

func (c *Client) setDisabled(ctx context.Context, route Route, verb, name string) (EnableResponse, error) {
	var res EnableResponse
	if err := c.do(ctx, call{route: route, values: []string{name}, out: &res}); err != nil {
		return res, fmt.Errorf("%s job %s: %w", verb, name, err)
	}
	return res, nil
}

// Fires lists up to limit of a job's fires, newest first; limit 0 means
// DefaultFireLimit.
func (c *Client) Fires(ctx context.Context, name string, limit int) (FireList, error) {
	var query url.Values
	if limit != 0 {
		query = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var list FireList
	if err := c.do(ctx, call{route: RouteListFires, values: []string{name}, query: query, out: &list}); err != nil {
		return list, fmt.Errorf("list fires of %s: %w", name, err)
	}
	return list, nil
}

// Backfill plans every nominal time of a job in [req.From, req.To] that
// has no fire yet (with req.DryRun, only lists them).
func (c *Client) Backfill(ctx context.Context, name string, req BackfillRequest) (BackfillResponse, error) {
	var res BackfillResponse
	if err := c.do(ctx, call{route: RouteBackfill, values: []string{name}, body: req, out: &res}); err != nil {
		return res, fmt.Errorf("backfill job %s: %w", name, err)
	}
	return res, nil
}

// Pause asks to pause a job (req.Note says why).
func (c *Client) Pause(ctx context.Context, name string, req PauseRequest) (PauseResponse, error) {
	return c.pause(ctx, RoutePauseJob, "pause", name, req)
}

// Resume asks to resume a paused job (req.Catchup runs the skipped times).
func (c *Client) Resume(ctx context.Context, name string, req PauseRequest) (PauseResponse, error) {
	return c.pause(ctx, RouteResumeJob, "resume", name, req)
}

func (c *Client) pause(ctx context.Context, route Route, verb, name string, req PauseRequest) (PauseResponse, error) {
	var res PauseResponse
	if err := c.do(ctx, call{route: route, values: []string{name}, body: req, out: &res}); err != nil {
		return res, fmt.Errorf("%s job %s: %w", verb, name, err)
	}
	return res, nil
}
