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

// follow keeps a warm copy of the jobs while this scheduler campaigns (a
// hot standby), so that once elected it reads only the executors, open
// fires and requests: a million jobs are decoded and queued before the
// election, not after it. It loads the jobs with their states, then
// follows their changes until campaign reports (nil: elected), and returns
// the revision its copy is at.
func (l *leader) follow(ctx context.Context, campaign <-chan error) (int64, error) {
	rev, err := l.loadJobsNow(ctx)
	if err != nil {
		return 0, err
	}
	l.log.Info("standby: jobs loaded", zap.Int("jobs", len(l.jobs)), zap.Int64("revision", rev))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := l.s.etcd.Watch(clientv3.WithRequireLeader(wctx), l.keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case err := <-campaign:
			return rev, err
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
				case strings.HasPrefix(key, l.keys.Jobs()):
					if err := l.onEvent(ctx, ev); err != nil {
						return 0, err
					}
				case strings.HasPrefix(key, l.keys.States()):
					// The leader moved the job's high-water mark: queue it
					// at its next unplanned time.
					e, ok := l.jobs[strings.TrimPrefix(key, l.keys.States())]
					if !ok || ev.Kv.ModRevision <= e.stateRev {
						continue
					}
					if ev.Type == clientv3.EventTypeDelete {
						e.state, e.stateRev = store.JobState{}, 0
					} else {
						l.setState(e, ev.Kv)
					}
					l.queue.set(e, l.firstNext(e))
				}
				rev = ev.Kv.ModRevision
			}
		}
	}
}
