package scheduler

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// snapshotPage is how many keys one read of the election snapshot returns,
// so a million jobs are read in bounded pieces.
const snapshotPage = 5000

// pager reads the keys under a prefix, in key order, at one revision, a
// page at a time.
type pager struct {
	etcd *clientv3.Client
	rev  int64
	from string // the next key to read
	end  string
	page []*mvccpb.KeyValue
	done bool
}

func newPager(etcd *clientv3.Client, prefix string, rev int64) *pager {
	return &pager{etcd: etcd, rev: rev, from: prefix, end: clientv3.GetPrefixRangeEnd(prefix)}
}

// peek returns the next key, or nil after the last.
func (p *pager) peek(ctx context.Context) (*mvccpb.KeyValue, error) {
	if len(p.page) == 0 && !p.done {
		resp, err := p.etcd.Get(ctx, p.from, clientv3.WithRange(p.end), clientv3.WithRev(p.rev), clientv3.WithLimit(snapshotPage))
		if err != nil {
			return nil, fmt.Errorf("read %s at revision %d: %w", p.from, p.rev, err)
		}
		p.page, p.done = resp.Kvs, !resp.More
		if n := len(resp.Kvs); n > 0 {
			p.from = string(resp.Kvs[n-1].Key) + "\x00"
		}
	}
	if len(p.page) == 0 {
		return nil, nil
	}
	return p.page[0], nil
}

// next returns the next key and moves past it, or nil after the last.
func (p *pager) next(ctx context.Context) (*mvccpb.KeyValue, error) {
	kv, err := p.peek(ctx)
	if kv != nil {
		p.page[0] = nil
		p.page = p.page[1:]
	}
	return kv, err
}

// each calls f for every key under the pager's prefix.
func (p *pager) each(ctx context.Context, f func(*mvccpb.KeyValue)) error {
	for {
		kv, err := p.next(ctx)
		if err != nil || kv == nil {
			return err
		}
		f(kv)
	}
}
