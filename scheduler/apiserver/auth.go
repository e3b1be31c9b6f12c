package apiserver

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/api"
	"github.com/aionsched/aion/scheduler/store"
)

// caller is who sent a request: the token it carried.
type caller struct {
	name string   // the token's name, recorded as requested_by
	role api.Role // what the token may do
}

type callerKey struct{}

// requestedBy names the caller of an authorized request, for the records
// it writes (requested_by, paused_by, created_by): the token's name.
func requestedBy(r *http.Request) string {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c.name
}

// authorize checks that the request carries a valid token, in its
// Authorization header (the only place a credential is taken from: no
// cookie, no query parameter), whose role allows route rt. It returns the
// request with the caller in its context, or a 401 or 403.
func (s *Server) authorize(rt api.Route, r *http.Request) (*http.Request, error) {
	need := rt.Role()
	if need == api.RoleNone {
		return r, nil
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		return nil, errorf(http.StatusUnauthorized, "%s needs a token: send Authorization: Bearer TOKEN", rt)
	}
	scheme, secret, _ := strings.Cut(header, " ")
	secret = strings.TrimSpace(secret)
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, errorf(http.StatusUnauthorized, "Authorization: want Bearer TOKEN")
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	t, found, err := store.LookupToken(ctx, s.etcd, s.keys, secret)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errorf(http.StatusUnauthorized, "the token is not valid: it is unknown or was revoked")
	}
	role := api.Role(t.Role)
	if !role.Allows(need) {
		return nil, errorf(http.StatusForbidden, "%s needs role %s; token %s has role %s", rt, need, t.Name, cmp.Or(t.Role, "(none)"))
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, caller{name: t.Name, role: role})), nil
}

// createToken makes a token and answers its secret, this once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateTokenRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if !store.ValidTokenName(req.Name) {
		return errorf(http.StatusBadRequest, "name: %q is not a token name: %s", req.Name, store.TokenNameRule)
	}
	role, err := api.ParseRole(string(req.Role))
	if err != nil {
		return errorf(http.StatusBadRequest, "role: %v", err)
	}
	secret, err := store.NewTokenSecret()
	if err != nil {
		return err
	}
	t := store.Token{Name: req.Name, Role: string(role), CreatedAt: s.now().UTC(), CreatedBy: requestedBy(r)}
	ctx, cancel := etcdContext(r)
	defer cancel()
	if err := store.CreateToken(ctx, s.etcd, s.keys, t, secret); err != nil {
		if errors.Is(err, store.ErrTokenExists) {
			return errorf(http.StatusConflict, "a token named %s exists; revoke it first or choose another name", req.Name)
		}
		return err
	}
	s.log.Info("token created", zap.String("token", t.Name), zap.String("role", t.Role), zap.String("by", t.CreatedBy))
	writeJSON(w, http.StatusCreated, api.CreateTokenResponse{TokenInfo: tokenInfo(t), Secret: secret})
	return nil
}

// listTokens lists the tokens by name: never a secret nor a hash.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := etcdContext(r)
	defer cancel()
	tokens, err := store.ListTokens(ctx, s.etcd, s.keys)
	if err != nil {
		return err
	}
	list := api.TokenList{Tokens: make([]api.TokenInfo, 0, len(tokens))}
	for _, t := range tokens {
		list.Tokens = append(list.Tokens, tokenInfo(t))
	}
	slices.SortFunc(list.Tokens, func(a, b api.TokenInfo) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, list)
	return nil
}

// revokeToken deletes a token by name; the next request with it is 401.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !store.ValidTokenName(name) {
		return errorf(http.StatusBadRequest, "%q is not a token name: %s", name, store.TokenNameRule)
	}
	ctx, cancel := etcdContext(r)
	defer cancel()
	if err := store.RevokeToken(ctx, s.etcd, s.keys, name); err != nil {
		if errors.Is(err, store.ErrNoSuchToken) {
			return errorf(http.StatusNotFound, "no token named %s", name)
		}
		return err
	}
	s.log.Info("token revoked", zap.String("token", name), zap.String("by", requestedBy(r)))
	writeJSON(w, http.StatusOK, api.RevokeTokenResponse{Revoked: name})
	return nil
}

func tokenInfo(t store.Token) api.TokenInfo {
	return api.TokenInfo{Name: t.Name, Role: api.Role(t.Role), CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy}
}
