package api

import (
	"context"
	"fmt"
)

// CreateToken makes a token with a name and a role and returns it with its
// secret, shown this once. Only an admin token may; a taken name is
// ErrConflict.
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (CreateTokenResponse, error) {
	var res CreateTokenResponse
	if err := c.do(ctx, call{route: RouteCreateToken, body: req, out: &res}); err != nil {
		return res, fmt.Errorf("create token %s: %w", req.Name, err)
	}
	return res, nil
}

// ListTokens lists the tokens by name, without their secrets. Only an
// admin token may.
func (c *Client) ListTokens(ctx context.Context) (TokenList, error) {
	var list TokenList
	if err := c.do(ctx, call{route: RouteListTokens, out: &list}); err != nil {
		return list, fmt.Errorf("list tokens: %w", err)
	}
	return list, nil
}

// RevokeToken deletes the token named name; its secret is refused from
// the next request on. Only an admin token may; an unknown name is
// ErrNotFound.
func (c *Client) RevokeToken(ctx context.Context, name string) (RevokeTokenResponse, error) {
	var res RevokeTokenResponse
	if err := c.do(ctx, call{route: RouteRevokeToken, values: []string{name}, out: &res}); err != nil {
		return res, fmt.Errorf("revoke token %s: %w", name, err)
	}
	return res, nil
}
