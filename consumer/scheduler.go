// One scheduler for every shard: a queue ordered by when each shard is due, served by a bounded pool of pullers.
package consumer

import (
	"container/heap"
	"sync"
	"time"
)

// scheduler hands due shards to a fixed pool of pull workers. A shard is in
// the queue only while no worker has it, so it is never pulled twice at once.
type scheduler struct {
	mu      sync.Mutex
	queue   dueQueue
	wake    chan struct{} // a shard became due earlier than the timer
	work    chan *shardState
	stop    chan struct{}
	workers sync.WaitGroup
	loop    sync.WaitGroup
}

// newScheduler starts the dispatch loop and workers; each worker gets its own
// pull function from newWorker (its own buffers) and runs it for each due shard.
func newScheduler(workers int, newWorker func() func(*shardState)) *scheduler {
	s := &scheduler{
		wake: make(chan struct{}, 1),
		work: make(chan *shardState),
		stop: make(chan struct{}),
	}
	for range workers {
		pull := newWorker()
		s.workers.Go(func() {
			for sh := range s.work {
				pull(sh)
			}
		})
	}
	s.loop.Go(s.dispatch)
	return s
}

// schedule queues sh to be pulled at due (or moves it there if queued).
func (s *scheduler) schedule(sh *shardState, due time.Time) {
	s.mu.Lock()
	sh.due = due
	if sh.queueIndex >= 0 {
		heap.Fix(&s.queue, sh.queueIndex)
	} else {
		heap.Push(&s.queue, sh)
	}
	first := s.queue[0] == sh
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// unschedule removes sh from the queue; a worker may still hold it.
func (s *scheduler) unschedule(sh *shardState) {
	s.mu.Lock()
	if sh.queueIndex >= 0 {
		heap.Remove(&s.queue, sh.queueIndex)
	}
	s.mu.Unlock()
}

// queued reports how many shards wait in the queue.
func (s *scheduler) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *scheduler) dispatch() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var next *shardState
		wait := time.Hour
		if len(s.queue) > 0 {
			if d := time.Until(s.queue[0].due); d <= 0 {
				next = heap.Pop(&s.queue).(*shardState)
			} else {
				wait = d
			}
		}
		s.mu.Unlock()
		if next != nil {
			select {
			case s.work <- next:
				continue
			case <-s.stop:
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-s.stop:
			return
		}
	}
}

// close stops dispatching and waits for the workers to finish their pulls.
func (s *scheduler) close() {
	close(s.stop)
	s.loop.Wait()
	close(s.work)
	s.workers.Wait()
}

// dueQueue is a min-heap of shards by due time.
type dueQueue []*shardState

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].queueIndex, q[j].queueIndex = i, j
}

func (q *dueQueue) Push(x any) {
	sh := x.(*shardState)
	sh.queueIndex = len(*q)
	*q = append(*q, sh)
}

func (q *dueQueue) Pop() any {
	old := *q
	sh := old[len(old)-1]
	old[len(old)-1] = nil
	sh.queueIndex = -1
	*q = old[:len(old)-1]
	return sh
}
