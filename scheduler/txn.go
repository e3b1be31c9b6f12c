package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aionsched/aion/scheduler/store"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The outcomes of a fenced transaction other than success.
var (
	// errNotLeader: the fence compare failed, so another scheduler leads
	// now; this term stops acting at once.
	errNotLeader = errors.New("scheduler: not leader")
	// errConflict: a compare other than the fence failed (a record changed
	// since it was read); nothing was written. The caller reads again or
	// leaves the work to the watch or the next reconcile.
	errConflict = errors.New("scheduler: transaction conflict")
)

// maxTxnOps is etcd's default limit on the operations, and on the
// compares, of one transaction; the leader stays under it, so Aion works
// with an etcd configured as shipped.
const maxTxnOps = 128

// txn collects the compares and writes of one transaction. Each write
// carries the compare that makes it safe: a record is created only if
// absent, replaced or deleted only at the revision it was read at. The
// fence is added when the transaction is committed (fence.commit).
//
// A transaction that writes fire records is made by fence.txn, which gives
// it the term (the creation revision of the election key) its fence
// compares; createFire and updateFire stamp it into every record as
// Fire.Term, so each record says which term wrote it.
type txn struct {
	term int64 // the fence's revision, stamped into fire records (0: none)
	cmps []clientv3.Cmp
	ops  []clientv3.Op
}

// errUnstampedFire: a fire record written through create or update, or
// in a transaction without a term; fire records go through createFire and
// updateFire of a transaction made by fence.txn.
var errUnstampedFire = errors.New("scheduler: fire record written without its term (use fence.txn and createFire or updateFire)")

// create writes v (JSON) at key if the key does not exist, and returns the
// bytes written. Fire records go through createFire.
func (t *txn) create(key string, v any) ([]byte, error) {
	return t.put(key, clientv3.Compare(clientv3.CreateRevision(key), "=", 0), v)
}

// update writes v (JSON) at key if the key is still at revision rev (0: if
// it does not exist), and returns the bytes written. Fire records go
// through updateFire.
func (t *txn) update(key string, rev int64, v any) ([]byte, error) {
	return t.put(key, clientv3.Compare(clientv3.ModRevision(key), "=", rev), v)
}

// createFire is create for a fire record: it first sets f.Term to the
// transaction's term.
func (t *txn) createFire(key string, f *store.Fire) ([]byte, error) {
	if err := t.stamp(f); err != nil {
		return nil, err
	}
	return t.put(key, clientv3.Compare(clientv3.CreateRevision(key), "=", 0), f)
}

// updateFire is update for a fire record: it first sets f.Term to the
// transaction's term.
func (t *txn) updateFire(key string, rev int64, f *store.Fire) ([]byte, error) {
	if err := t.stamp(f); err != nil {
		return nil, err
	}
	return t.put(key, clientv3.Compare(clientv3.ModRevision(key), "=", rev), f)
}

func (t *txn) stamp(f *store.Fire) error {
	if t.term == 0 {
		return errUnstampedFire
	}
	f.Term = t.term
	return nil
}

func (t *txn) put(key string, cmp clientv3.Cmp, v any) ([]byte, error) {
	switch f := v.(type) {
	case store.Fire:
		return nil, errUnstampedFire
	case *store.Fire:
		if t.term == 0 || f.Term != t.term {
			return nil, errUnstampedFire
		}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", key, err)
	}
	t.cmps = append(t.cmps, cmp)
	t.ops = append(t.ops, clientv3.OpPut(key, string(data)))
	return data, nil
}

// remove deletes key if it is still at revision rev.
// unchanged makes t compare the record at key on its revision, writing
// nothing to it: a decision t writes depends on that record as the leader
// saw it at rev.
func (t *txn) unchanged(key string, rev int64) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
}

func (t *txn) remove(key string, rev int64) {
	t.cmps = append(t.cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	t.ops = append(t.ops, clientv3.OpDelete(key))
}

// add appends o's compares and writes to t (and its term, when t has none).
func (t *txn) add(o *txn) {
	if t.term == 0 {
		t.term = o.term
	}
	t.cmps = append(t.cmps, o.cmps...)
	t.ops = append(t.ops, o.ops...)
}

// size is the number of compares (as many as writes), the fence not counted.
func (t *txn) size() int { return len(t.cmps) }

// empty reports whether t writes nothing.
func (t *txn) empty() bool { return len(t.ops) == 0 }

// fence proves a term's leadership inside every write: each transaction
// also compares the creation revision of the election key the term won,
// so a paused or partitioned ex-leader cannot write.
type fence struct {
	etcd    *clientv3.Client
	key     string // the election key this term won
	rev     int64  // its creation revision
	timeout time.Duration
}

// txn starts a transaction of this term: the fire records it writes carry
// the term (Fire.Term), the revision the fence compares.
func (f *fence) txn() txn { return txn{term: f.rev} }

// commit runs t fenced and returns the new revision. It returns an error
// matching errConflict when a compare other than the fence failed, and
// errNotLeader when the fence did. Any other error means the outcome is
// unknown: the caller ends the term, and the next leader reads what was
// committed (and never creates a fire twice: fires are created only if
// absent).
func (f *fence) commit(ctx context.Context, t *txn) (int64, error) {
	if t.term != 0 && t.term != f.rev {
		return 0, fmt.Errorf("%w: the transaction is of term %d, the fence of %d", errUnstampedFire, t.term, f.rev)
	}
	tctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev)}, t.cmps...)
	resp, err := f.etcd.Txn(tctx).If(cmps...).Then(t.ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("fenced transaction: %w", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	lead, err := f.etcd.Get(ctx, f.key)
	if err != nil {
		return 0, fmt.Errorf("check leadership: %w", err)
	}
	if len(lead.Kvs) == 0 || lead.Kvs[0].CreateRevision != f.rev {
		return 0, errNotLeader
	}
	return 0, errConflict
}

// rewriteFire replaces the record of fire f if it is still at rev (fenced)
// and returns it as written; errConflict when the record had changed.
func (f *fence) rewriteFire(ctx context.Context, keys store.Keys, fire store.Fire, rev int64) (*openFire, error) {
	t := f.txn()
	data, err := t.updateFire(keys.Fire(fire.ID), rev, &fire)
	if err != nil {
		return nil, err
	}
	newRev, err := f.commit(ctx, &t)
	if err != nil {
		return nil, err
	}
	return &openFire{fire: fire, rev: newRev, record: data}, nil
}

// keyExists reports whether key is stored (a count-only read: no value).
func keyExists(ctx context.Context, etcd *clientv3.Client, key string) (bool, error) {
	resp, err := etcd.Get(ctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("read %s: %w", key, err)
	}
	return resp.Count > 0, nil
}

// conflicted reports whether err is a conflict, the one commit failure a
// term survives: the work is redone from fresh reads.
func conflicted(err error) bool { return errors.Is(err, errConflict) }
