// One scheduler for many timed jobs (shard pulls, heartbeats): a queue ordered by when each is due, served by a bounded pool of workers.
package consumer

import (
	"container/heap"
	"sync"
	"time"
)

// maxBatch bounds a batch: its last answer waits for all the others.
const maxBatch = 128

// schedSlot is an item's place in a scheduler's queue.
type schedSlot struct {
	due   time.Time
	index int // -1 while not queued
	// alone: run in a batch of its own, on whichever worker is free (a
	// shard with data to read: several of those should not queue behind
	// one another on one worker while others idle).
	alone bool
}

// schedItem is anything a scheduler can queue.
type schedItem interface{ slot() *schedSlot }

// scheduler hands due items to a fixed pool of workers, in batches of those
// due within slack of each other: one wake-up serves many idle polls. An item
// is in the queue only while no worker has it, so it never runs twice at once.
type scheduler[T schedItem] struct {
	mu    sync.Mutex
	queue dueQueue[T]
	wake  chan struct{} // an item became due earlier than the timer
	work  chan []T
	stop  chan struct{}
	slack time.Duration
	// overflow, when set, runs a batch on a goroutine of its own when every
	// worker is busy, so that slow calls of some items never hold up others.
	overflow func([]T)
	workers  sync.WaitGroup
	loop     sync.WaitGroup
}

// newScheduler starts the dispatch loop and workers; each worker gets its own
// function from newWorker (its own buffers) and runs it for each batch of
// due items.
func newScheduler[T schedItem](workers int, slack time.Duration, newWorker func() func([]T), overflow func([]T)) *scheduler[T] {
	s := &scheduler[T]{
		wake:     make(chan struct{}, 1),
		work:     make(chan []T),
		stop:     make(chan struct{}),
		slack:    slack,
		overflow: overflow,
	}
	for range workers {
		run := newWorker()
		s.workers.Go(func() {
			for batch := range s.work {
				run(batch)
			}
		})
	}
	s.loop.Go(s.dispatch)
	return s
}

// schedule queues item to run at due (or moves it there if queued); alone
// keeps it out of batches.
func (s *scheduler[T]) schedule(item T, due time.Time, alone bool) {
	s.mu.Lock()
	slot := item.slot()
	slot.due, slot.alone = due, alone
	if slot.index >= 0 {
		heap.Fix(&s.queue, slot.index)
	} else {
		heap.Push(&s.queue, item)
	}
	first := s.queue[0].slot() == slot
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// unschedule removes item from the queue and reports whether it was queued;
// a worker may still be running it.
func (s *scheduler[T]) unschedule(item T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := item.slot().index; i >= 0 {
		heap.Remove(&s.queue, i)
		return true
	}
	return false
}

func (s *scheduler[T]) dispatch() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var spawned sync.WaitGroup
	defer spawned.Wait()
	for {
		s.mu.Lock()
		var batch []T
		wait := time.Hour
		now := time.Now()
		for len(s.queue) > 0 {
			top := s.queue[0].slot()
			d := top.due.Sub(now)
			if d > 0 && (len(batch) == 0 || d > s.slack) {
				if len(batch) == 0 {
					wait = d
				}
				break
			}
			if top.alone && len(batch) > 0 {
				break
			}
			batch = append(batch, heap.Pop(&s.queue).(T))
			if top.alone || len(batch) == maxBatch {
				break
			}
		}
		s.mu.Unlock()
		if batch != nil {
			if s.overflow != nil {
				select {
				case s.work <- batch:
				default:
					spawned.Go(func() { s.overflow(batch) })
				}
				continue
			}
			select {
			case s.work <- batch:
				continue
			case <-s.stop:
				return
			}
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.wake:
		case <-s.stop:
			return
		}
	}
}

// close stops dispatching and waits for the workers to finish what they run.
func (s *scheduler[T]) close() {
	close(s.stop)
	s.loop.Wait()
	close(s.work)
	s.workers.Wait()
}

// dueQueue is a min-heap of items by due time.
type dueQueue[T schedItem] []T

func (q dueQueue[T]) Len() int           { return len(q) }
func (q dueQueue[T]) Less(i, j int) bool { return q[i].slot().due.Before(q[j].slot().due) }
func (q dueQueue[T]) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].slot().index, q[j].slot().index = i, j
}

func (q *dueQueue[T]) Push(x any) {
	item := x.(T)
	item.slot().index = len(*q)
	*q = append(*q, item)
}

func (q *dueQueue[T]) Pop() any {
	old := *q
	item := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	item.slot().index = -1
	*q = old[:len(old)-1]
	return item
}
