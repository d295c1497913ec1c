package prober

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Observers fans every event out to each observer in order, so one run feeds the Prometheus
// collector, a report builder and tests alike. Every member must itself not block (wrap slow
// ones in a Queue).
type Observers []Observer

var _ Observer = Observers(nil)

// Observe implements Observer.
func (os Observers) Observe(ev Event) {
	for _, o := range os {
		o.Observe(ev)
	}
}

// DefaultQueueLimit is the most events a Queue holds before it drops new ones.
const DefaultQueueLimit = 1 << 20

// queueGather is how long a Queue lets events gather after the first one of a batch before it
// delivers them: at hundreds of requests per second one wake-up of its goroutine per few
// events, not two per request, costs the client less CPU, and no observer behind a queue
// needs its events sooner.
const queueGather = 5 * time.Millisecond

// Queue hands events to an observer that may be slow, from a goroutine of its own, so the run
// loop never waits on it: Observe copies the event (and its record) into a pending list under
// a short lock and returns. Events keep their order. Past limit pending events, new events are
// dropped and counted (Dropped) rather than delaying the prober or growing without bound; at
// 1 Mi events that is minutes of backlog even at thousands of requests per second.
//
// The owner calls Run (typically on a goroutine) and, once no more events can come, Close,
// which lets Run deliver what is pending and return.
type Queue struct {
	next  Observer
	limit int

	mu      sync.Mutex
	pending []Event
	closed  bool
	wake    chan struct{}
	closing chan struct{} // closed by Close: stop gathering, deliver now
	done    chan struct{}
	dropped atomic.Uint64

	records sync.Pool // *Record copies, returned after delivery
}

// NewQueue returns a queue in front of next; limit ≤ 0 means DefaultQueueLimit.
func NewQueue(next Observer, limit int) *Queue {
	if limit <= 0 {
		limit = DefaultQueueLimit
	}
	q := &Queue{next: next, limit: limit, wake: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
	q.records.New = func() any { return &Record{} }
	return q
}

// Observe implements Observer: it never blocks on the observer behind the queue.
func (q *Queue) Observe(ev Event) {
	if ev.Record != nil {
		cp := q.records.Get().(*Record)
		ev.Record.CopyTo(cp)
		ev.Record = cp
	}
	q.mu.Lock()
	if q.closed || len(q.pending) >= q.limit {
		q.mu.Unlock()
		q.dropped.Add(1)
		if ev.Record != nil {
			q.records.Put(ev.Record)
		}
		return
	}
	q.pending = append(q.pending, ev)
	first := len(q.pending) == 1
	q.mu.Unlock()
	// Only the first event of a batch wakes Run: it takes every event pending when it wakes
	// and looks again after delivering them.
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped returns how many events were dropped because the queue was full or closed.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Run delivers events until Close is called and everything pending was delivered, or ctx ends
// (then pending events are dropped). It returns when done; call it once.
func (q *Queue) Run(ctx context.Context) {
	defer close(q.done)
	var batch []Event
	gather := time.NewTimer(queueGather)
	gather.Stop()
	defer gather.Stop()
	for {
		q.mu.Lock()
		batch, q.pending = q.pending, batch[:0]
		closed := q.closed
		q.mu.Unlock()
		for i := range batch {
			if ctx.Err() != nil {
				q.dropped.Add(uint64(len(batch) - i))
				return
			}
			q.next.Observe(batch[i])
			if r := batch[i].Record; r != nil {
				q.records.Put(r)
			}
			batch[i] = Event{}
		}
		if closed && len(batch) == 0 {
			return
		}
		if len(batch) > 0 {
			continue // more may have come while delivering
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
		gather.Reset(queueGather)
		select {
		case <-gather.C:
		case <-q.closing:
			gather.Stop()
		case <-ctx.Done():
			return
		}
	}
}

// Close stops accepting events and waits until Run has delivered the pending ones and
// returned (or until ctx ends). Call it after the runners that feed the queue have stopped.
func (q *Queue) Close(ctx context.Context) {
	q.mu.Lock()
	if !q.closed {
		close(q.closing)
	}
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	select {
	case <-q.done:
	case <-ctx.Done():
	}
}
