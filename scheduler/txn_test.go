package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aionsched/aion/scheduler/store"
)

// TestTxn_FireRecordsCarryTheFencesTerm: a transaction made by fence.txn
// stamps its term into every fire record it writes, and a fire record
// cannot be written without one.
func TestTxn_FireRecordsCarryTheFencesTerm(t *testing.T) {
	keys := store.Keys{Prefix: store.DefaultPrefix}
	fc := &fence{key: keys.Election() + "k", rev: 42}
	tx := fc.txn()
	f := store.Fire{ID: store.FireID{Job: "a", Suffix: "1"}, State: store.FirePlanned}
	data, err := tx.createFire(keys.Fire(f.ID), &f)
	if err != nil {
		t.Fatal(err)
	}
	var written store.Fire
	if err := json.Unmarshal(data, &written); err != nil || written.Term != 42 || f.Term != 42 {
		t.Errorf("written term %d, caller's %d (%v); want 42, the fence's revision", written.Term, f.Term, err)
	}
	g := store.Fire{ID: store.FireID{Job: "a", Suffix: "2"}, Term: 7} // read from an older term
	if data, err = tx.updateFire(keys.Fire(g.ID), 3, &g); err != nil || json.Unmarshal(data, &written) != nil || written.Term != 42 {
		t.Errorf("rewritten term %d (%v), want 42", written.Term, err)
	}
	if _, err := tx.create(keys.Fire(g.ID), g); !errors.Is(err, errUnstampedFire) {
		t.Errorf("create of a fire value: %v, want errUnstampedFire", err)
	}
	if _, err := tx.update(keys.Fire(g.ID), 3, &store.Fire{Term: 7}); !errors.Is(err, errUnstampedFire) {
		t.Errorf("update of a fire with another term: %v, want errUnstampedFire", err)
	}
	var bare txn
	if _, err := bare.createFire(keys.Fire(f.ID), &f); !errors.Is(err, errUnstampedFire) {
		t.Errorf("createFire in a transaction without a term: %v, want errUnstampedFire", err)
	}
	if tx.size() != 2 {
		t.Errorf("%d writes, want the 2 stamped ones only", tx.size())
	}
	other := (&fence{key: fc.key, rev: 43}).txn()
	other.add(&tx)
	if _, err := fc.commit(context.Background(), &other); !errors.Is(err, errUnstampedFire) {
		t.Errorf("commit of another term's transaction: %v, want errUnstampedFire", err)
	}
}
