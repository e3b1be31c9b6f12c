package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/aionsched/aion/scheduler/store"
)

// standby keeps a warm copy of the jobs while its scheduler campaigns (a
// hot standby), so that once elected the term reads only the executors,
// open fires and requests: a million jobs are decoded and queued before
// the election, not after it. It never writes.
type standby struct {
	etcd *clientv3.Client
	keys store.Keys
	log  *zap.Logger
	jobs *jobTable
}

// follow loads the jobs with their states, then follows their changes
// until won reports (nil: elected), and returns the revision its copy is
// at; or until sessionDone closes, the campaign's session having ended,
// and returns errSessionEnded. A state written by the leader moves the
// job's high-water mark: the job is queued at its next unplanned time.
func (sb *standby) follow(ctx context.Context, won <-chan error, sessionDone <-chan struct{}) (int64, error) {
	rev, err := sb.jobs.loadNow(ctx)
	if err != nil {
		return 0, err
	}
	sb.log.Info("standby: jobs loaded", zap.Int("jobs", sb.jobs.len()), zap.Int64("revision", rev))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := sb.etcd.Watch(clientv3.WithRequireLeader(wctx), sb.keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case err := <-won:
			return rev, err
		case <-sessionDone:
			// Its election key went with the session's lease: this is no
			// candidate any more, and would wait for the leader to go
			// before it noticed.
			return 0, errSessionEnded
		case resp, ok := <-watch:
			if !ok {
				return 0, errors.New("etcd watch closed")
			}
			if err := resp.Err(); err != nil {
				return 0, fmt.Errorf("etcd watch: %w", err)
			}
			for _, ev := range resp.Events {
				key := string(ev.Kv.Key)
				switch {
				case strings.HasPrefix(key, sb.keys.Jobs()):
					if err := sb.jobs.onJobEvent(ctx, ev); err != nil {
						return 0, err
					}
				case strings.HasPrefix(key, sb.keys.States()):
					if e := sb.jobs.onStateEvent(ev); e != nil {
						sb.jobs.requeue(e)
					}
				}
				rev = ev.Kv.ModRevision
			}
		}
	}
}
