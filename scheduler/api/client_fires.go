package api

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
)

// Fire returns a fire's record. A requested run is ErrNotFound until the
// leader plans it.
func (c *Client) Fire(ctx context.Context, id FireID) (Fire, error) {
	var f Fire
	if err := c.do(ctx, call{route: RouteGetFire, values: []string{id.Job, id.Suffix}, out: &f}); err != nil {
		return f, fmt.Errorf("get fire %s: %w", id, err)
	}
	return f, nil
}

// Log returns a piece of a fire's output from offset on, fetched from the
// executor that runs or ran it (ErrBadGateway when it does not answer).
// StreamLog reads a whole output.
func (c *Client) Log(ctx context.Context, id FireID, offset int64) (LogChunk, error) {
	return c.LogAttempt(ctx, id, 0, offset)
}

// LogAttempt is Log for one attempt of the fire (1 is the first; 0 the
// latest). An earlier attempt's chunk is Final: that attempt has ended.
func (c *Client) LogAttempt(ctx context.Context, id FireID, attempt int, offset int64) (LogChunk, error) {
	var chunk LogChunk
	query := url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	if attempt != 0 {
		query.Set("attempt", strconv.Itoa(attempt))
	}
	if err := c.do(ctx, call{route: RouteGetLog, values: []string{id.Job, id.Suffix}, query: query, out: &chunk}); err != nil {
		return chunk, fmt.Errorf("get the output of %s: %w", id, err)
	}
	return chunk, nil
}

// Kill asks to stop an open fire: a planned one is cancelled, a running
// one killed. It is ErrConflict when the fire has ended.
func (c *Client) Kill(ctx context.Context, id FireID, req KillRequest) (KillResponse, error) {
	var res KillResponse
	if err := c.do(ctx, call{route: RouteKillFire, values: []string{id.Job, id.Suffix}, body: req, out: &res}); err != nil {
		return res, fmt.Errorf("kill %s: %w", id, err)
	}
	return res, nil
}

// Nodes lists the live executors with their latest load, sorted by ID.
func (c *Client) Nodes(ctx context.Context) (NodeList, error) {
	var list NodeList
	if err := c.do(ctx, call{route: RouteListNodes, out: &list}); err != nil {
		return list, fmt.Errorf("list nodes: %w", err)
	}
	return list, nil
}

// RecentFires lists up to limit of the most recent fires of all jobs,
// newest first; limit 0 means DefaultFireLimit.
func (c *Client) RecentFires(ctx context.Context, limit int) (FireList, error) {
	var query url.Values
	if limit != 0 {
		query = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var list FireList
	if err := c.do(ctx, call{route: RouteRecentFires, query: query, out: &list}); err != nil {
		return list, fmt.Errorf("list recent fires: %w", err)
	}
	return list, nil
}
