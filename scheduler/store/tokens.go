package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// API tokens. A token's secret is shown once, when it is made; etcd holds
// only its SHA-256 hash:
//
//	<prefix>tokens/hash/<sha256 hex>  Token: name, role, created_at, created_by
//	<prefix>tokens/name/<name>        the hash, so that names are unique and a token is revoked by name
//
// Both keys are created in one transaction (only if both are absent) and
// deleted in one.

// TokenSecretPrefix starts every token secret, so a secret is recognisable
// (in a config file, or by secret scanners).
const TokenSecretPrefix = "aion_"

// tokenSecretBytes is how many random bytes a secret carries.
const tokenSecretBytes = 32

// Token is the record of one API token, kept under its hash.
type Token struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"` // api.Role: viewer, operator or admin
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"` // the token that made it, or how it was made ("etcd", "aion dev")
}

// Errors of CreateToken and RevokeToken.
var (
	ErrTokenExists  = errors.New("store: a token of that name exists")
	ErrNoSuchToken  = errors.New("store: no token of that name")
	errBadTokenName = errors.New("store: bad token name")
)

// validTokenName: like job names, what a person can type and read in logs.
var validTokenName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ValidTokenName reports whether name can name a token: 1 to 63 lower-case
// letters, digits, '-', '_' or '.', starting with a letter or digit.
func ValidTokenName(name string) bool { return validTokenName.MatchString(name) }

// TokenNameRule says what ValidTokenName accepts, for error messages.
const TokenNameRule = "token names are 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit"

// Tokens is the prefix of every token key.
func (k Keys) Tokens() string { return k.Prefix + "tokens/" }

// TokenHashes is the prefix of the token records, keyed by hash.
func (k Keys) TokenHashes() string { return k.Tokens() + "hash/" }

// TokenHash is the key of the record of the token whose hash is hash.
func (k Keys) TokenHash(hash string) string { return k.TokenHashes() + hash }

// TokenName is the key that reserves a token name; it holds the hash.
func (k Keys) TokenName(name string) string { return k.Tokens() + "name/" + name }

// NewTokenSecret returns a new random secret: TokenSecretPrefix and 32
// bytes from crypto/rand in unpadded base64url.
func NewTokenSecret() (string, error) {
	b := make([]byte, tokenSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token secret: %w", err)
	}
	return TokenSecretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is the SHA-256 of a secret in hex, the key it is kept under.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken stores t under the hash of secret and reserves its name, in
// one transaction that writes only when neither key exists. A taken name
// is ErrTokenExists.
func CreateToken(ctx context.Context, cli *clientv3.Client, keys Keys, t Token, secret string) error {
	if !ValidTokenName(t.Name) {
		return fmt.Errorf("token %q: %w: %s", t.Name, errBadTokenName, TokenNameRule)
	}
	if !strings.HasPrefix(secret, TokenSecretPrefix) {
		return fmt.Errorf("token %s: the secret does not start with %s", t.Name, TokenSecretPrefix)
	}
	t.CreatedAt = t.CreatedAt.UTC()
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("token %s: encode: %w", t.Name, err)
	}
	hash := HashToken(secret)
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(keys.TokenName(t.Name)), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(keys.TokenHash(hash)), "=", 0)).
		Then(clientv3.OpPut(keys.TokenName(t.Name), hash), clientv3.OpPut(keys.TokenHash(hash), string(data))).
		Commit()
	if err != nil {
		return fmt.Errorf("token %s: create: %w", t.Name, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("token %s: %w", t.Name, ErrTokenExists)
	}
	return nil
}

// LookupToken returns the record of the token whose secret is secret;
// found is false when there is none (never made, or revoked).
func LookupToken(ctx context.Context, cli *clientv3.Client, keys Keys, secret string) (t Token, found bool, err error) {
	resp, err := cli.Get(ctx, keys.TokenHash(HashToken(secret)))
	if err != nil {
		return Token{}, false, fmt.Errorf("read token: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return Token{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &t); err != nil {
		return Token{}, false, fmt.Errorf("decode token record %s: %w", resp.Kvs[0].Key, err)
	}
	return t, true, nil
}

// ListTokens returns every token record, sorted by the hash they are kept
// under (callers sort by name). Hashes are not returned.
func ListTokens(ctx context.Context, cli *clientv3.Client, keys Keys) ([]Token, error) {
	resp, err := cli.Get(ctx, keys.TokenHashes(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	tokens := make([]Token, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var t Token
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			return nil, fmt.Errorf("decode token record %s: %w", kv.Key, err)
		}
		tokens = append(tokens, t)
	}
	return tokens, nil
}

// RevokeToken deletes the token named name: its record and its name, in
// one transaction compared on the name key as read. A name with no token
// is ErrNoSuchToken. The next request with its secret is refused.
func RevokeToken(ctx context.Context, cli *clientv3.Client, keys Keys, name string) error {
	for {
		resp, err := cli.Get(ctx, keys.TokenName(name))
		if err != nil {
			return fmt.Errorf("token %s: read: %w", name, err)
		}
		if len(resp.Kvs) == 0 {
			return fmt.Errorf("token %s: %w", name, ErrNoSuchToken)
		}
		kv := resp.Kvs[0]
		txn, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(keys.TokenName(name)), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(keys.TokenName(name)), clientv3.OpDelete(keys.TokenHash(string(kv.Value)))).
			Commit()
		if err != nil {
			return fmt.Errorf("token %s: revoke: %w", name, err)
		}
		if txn.Succeeded {
			return nil
		}
		// Revoked and made again meanwhile: read the name again.
	}
}
