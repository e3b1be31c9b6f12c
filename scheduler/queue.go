package scheduler

import (
	"container/heap"
	"time"
)

// fireQueue is a min-heap of jobs by their next nominal time. Only the
// leader loop touches it.
type fireQueue []*jobEntry

func (q fireQueue) Len() int { return len(q) }
func (q fireQueue) Less(i, j int) bool {
	if q[i].next.Equal(q[j].next) {
		return q[i].name < q[j].name
	}
	return q[i].next.Before(q[j].next)
}
func (q fireQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *fireQueue) Push(x any) {
	e := x.(*jobEntry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *fireQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}

// set queues e at next, or removes it when next is zero.
func (q *fireQueue) set(e *jobEntry, next time.Time) {
	e.next = next
	switch {
	case next.IsZero() && e.index >= 0:
		heap.Remove(q, e.index)
	case next.IsZero():
	case e.index >= 0:
		heap.Fix(q, e.index)
	default:
		heap.Push(q, e)
	}
}

// remove takes e out of the queue if it is queued.
func (q *fireQueue) remove(e *jobEntry) {
	if e.index >= 0 {
		heap.Remove(q, e.index)
	}
}

// peek returns the job due first, or nil.
func (q fireQueue) peek() *jobEntry {
	if len(q) == 0 {
		return nil
	}
	return q[0]
}
