package scheduler

import (
	"container/heap"
	"time"
)

// dueHeap is a min-heap of jobs by their next nominal time: the job due
// first is at the top. Its owner is the job table.
type dueHeap []*jobEntry

func (q dueHeap) Len() int { return len(q) }
func (q dueHeap) Less(i, j int) bool {
	if q[i].next.Equal(q[j].next) {
		return q[i].name < q[j].name
	}
	return q[i].next.Before(q[j].next)
}
func (q dueHeap) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *dueHeap) Push(x any) {
	e := x.(*jobEntry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *dueHeap) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*q = old[:len(old)-1]
	return e
}

// set queues e at next, or removes it when next is zero.
func (q *dueHeap) set(e *jobEntry, next time.Time) {
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
func (q *dueHeap) remove(e *jobEntry) {
	if e.index >= 0 {
		heap.Remove(q, e.index)
	}
}

// peek returns the job due first, or nil.
func (q dueHeap) peek() *jobEntry {
	if len(q) == 0 {
		return nil
	}
	return q[0]
}
