package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Log requests are signed so that only a process with etcd access (a
// scheduler's API server) can read a run's output: anyone on NATS can
// publish on an executor's log subject, but not sign.

// LogKey is the key of the log signing key: random bytes created once, by
// the first executor or API server that starts (LogSigningKey), and never
// changed.
func (k Keys) LogKey() string { return k.Prefix + "logkey" }

// LogRequestTTL is how far ahead a LogRequest's expiry is set; executors
// refuse one that expires further ahead than MaxLogRequestAhead (a clock
// skew allowance on top).
const (
	LogRequestTTL      = 10 * time.Second
	MaxLogRequestAhead = time.Minute
)

// logKeyBytes is the length of the log signing key.
const logKeyBytes = 32

// LogSigningKey returns the log signing key, creating it if absent (a
// transaction: when two processes race, both get the one that was stored).
func LogSigningKey(ctx context.Context, cli *clientv3.Client, keys Keys) ([]byte, error) {
	key := keys.LogKey()
	fresh := make([]byte, logKeyBytes)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("log signing key: random bytes: %w", err)
	}
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(fresh))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("log signing key %s: %w", key, err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 || len(kvs[0].Value) < logKeyBytes {
		return nil, fmt.Errorf("log signing key %s: missing or shorter than %d bytes", key, logKeyBytes)
	}
	return kvs[0].Value, nil
}

// ErrNoLogKey is returned by ReadLogSigningKey before any executor or API
// server started.
var ErrNoLogKey = errors.New("no log signing key in etcd yet: no executor has started")

// ReadLogSigningKey returns the log signing key, or ErrNoLogKey.
func ReadLogSigningKey(ctx context.Context, cli *clientv3.Client, keys Keys) ([]byte, error) {
	resp, err := cli.Get(ctx, keys.LogKey())
	if err != nil {
		return nil, fmt.Errorf("log signing key %s: %w", keys.LogKey(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, ErrNoLogKey
	}
	if len(resp.Kvs[0].Value) < logKeyBytes {
		return nil, fmt.Errorf("log signing key %s: shorter than %d bytes", keys.LogKey(), logKeyBytes)
	}
	return resp.Kvs[0].Value, nil
}

// Sign sets the request's expiry and signature under key.
func (r *LogRequest) Sign(key []byte, expires time.Time) {
	r.Expires = expires.UTC()
	r.Signature = r.mac(key)
}

// Verify checks that the request was signed under key and has not expired
// at now; the error says which.
func (r LogRequest) Verify(key []byte, now time.Time) error {
	switch {
	case len(r.Signature) == 0:
		return errors.New("unsigned log request refused: only a scheduler can ask for output")
	case !hmac.Equal(r.Signature, r.mac(key)):
		return errors.New("badly signed log request refused")
	case !now.Before(r.Expires):
		return fmt.Errorf("expired log request refused (expired %s)", r.Expires.Format(time.RFC3339Nano))
	case r.Expires.Sub(now) > MaxLogRequestAhead:
		return fmt.Errorf("log request refused: it expires more than %s ahead", MaxLogRequestAhead)
	}
	return nil
}

// mac is HMAC-SHA256 over every field but the signature, one per line.
func (r LogRequest) mac(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, field := range []string{"aion log request v1", r.Fire.String(), strconv.Itoa(r.Attempt),
		strconv.FormatInt(r.Offset, 10), strconv.FormatInt(r.Expires.UnixNano(), 10)} {
		m.Write([]byte(field))
		m.Write([]byte{'\n'})
	}
	return m.Sum(nil)
}
