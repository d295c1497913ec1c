package simulator

import (
	"context"
	"sync"
	"sync/atomic"
)

// scheduler admits requests like vLLM's first-come-first-served scheduler: at most maxSeqs
// run at once and their KV reservations must fit the cache; everyone else waits in arrival
// order, and the head of the queue blocks those behind it.
type scheduler struct {
	maxSeqs  int
	capacity int

	mu       sync.Mutex
	running  int
	reserved int       // KV tokens reserved by running sequences (prompt + max_tokens each)
	queue    []*waiter // FIFO from queue[head]; entries whose client left are skipped
	head     int
	waiting  int // waiters still interested, for vllm:num_requests_waiting

	// held counts KV tokens actually in use (prompt + generated so far) by running
	// sequences; it changes once per token, so it lives outside the mutex.
	held atomic.Int64
	// runningNow mirrors running for lock-free reads on the per-token path.
	runningNow atomic.Int64
}

// waiter is one queued request. ready is closed when it is admitted.
type waiter struct {
	need     int
	ready    chan struct{}
	admitted bool
	gone     bool
}

func newScheduler(maxSeqs, capacity int) *scheduler {
	return &scheduler{maxSeqs: maxSeqs, capacity: capacity}
}

// fits reports whether a sequence reserving need tokens can start now. Called with mu held.
func (s *scheduler) fits(need int) bool {
	return s.running < s.maxSeqs && s.reserved+need <= s.capacity
}

// admit starts a sequence. Called with mu held.
func (s *scheduler) admit(need int) {
	s.running++
	s.reserved += need
	s.runningNow.Store(int64(s.running))
}

// acquire blocks until a sequence reserving need KV tokens may run, or until ctx or done
// ends the wait (then it returns false and holds nothing). On success the caller must call
// release exactly once.
func (s *scheduler) acquire(ctx context.Context, done <-chan struct{}, need int) bool {
	s.mu.Lock()
	if s.waiting == 0 && s.fits(need) {
		s.admit(need)
		s.mu.Unlock()
		return true
	}
	w := &waiter{need: need, ready: make(chan struct{})}
	s.queue = append(s.queue, w)
	s.waiting++
	s.mu.Unlock()

	select {
	case <-w.ready:
		return true
	case <-ctx.Done():
	case <-done:
	}
	s.mu.Lock()
	if w.admitted {
		// Admitted while we were leaving: hand the slot straight on.
		s.mu.Unlock()
		s.release(need, 0)
		return false
	}
	w.gone = true
	s.waiting--
	// The leaver may have been the head that blocked others who fit.
	s.dispatch()
	s.mu.Unlock()
	return false
}

// release ends a sequence that reserved need tokens and held tokens of KV, and admits
// whoever now fits at the head of the queue.
func (s *scheduler) release(need, held int) {
	s.held.Add(-int64(held))
	s.mu.Lock()
	s.running--
	s.reserved -= need
	s.runningNow.Store(int64(s.running))
	s.dispatch()
	s.mu.Unlock()
}

// dispatch admits queued waiters in order while the head fits. Called with mu held.
func (s *scheduler) dispatch() {
	for s.head < len(s.queue) {
		w := s.queue[s.head]
		if !w.gone {
			if !s.fits(w.need) {
				break
			}
			s.admit(w.need)
			w.admitted = true
			s.waiting--
			close(w.ready)
		}
		s.queue[s.head] = nil
		s.head++
	}
	// Reuse the backing array once drained, or compact it when the dead prefix dominates,
	// so a long-running queue neither grows without bound nor copies on every pop.
	switch {
	case s.head == len(s.queue):
		s.queue = s.queue[:0]
		s.head = 0
	case s.head > 64 && s.head > len(s.queue)/2:
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		s.head = 0
	}
}

// counts returns the running and waiting sequences and the KV tokens held, for /metrics.
func (s *scheduler) counts() (running, waiting int, held int64) {
	s.mu.Lock()
	running, waiting = s.running, s.waiting
	s.mu.Unlock()
	return running, waiting, s.held.Load()
}
