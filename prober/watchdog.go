package prober

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog enforces a request's three time bounds with one timer: the total timeout and the
// first-byte timeout, counted from its start, and then the idle timeout between reads. Data
// only stores the time of the latest read; the timer, when it fires, compares that with the
// bound and either cancels the request or sets itself for the rest of the bound. A stream's
// reads therefore cost a clock read each instead of a timer reset each (the runtime's timer
// heap under its lock, 17 times per 16-token request), and a request one timer instead of two.
type watchdog struct {
	base      time.Time
	total     time.Duration
	firstByte time.Duration
	cancel    context.CancelCauseFunc
	last      atomic.Int64 // offset from base of the latest read, in the reading phase

	mu      sync.Mutex
	t       *time.Timer
	reading bool          // headers came: the idle bound applies
	idle    time.Duration // the idle bound
	stopped bool
	cause   error // the bound that passed, once cancel was called
}

// start starts the bounds of a zero watchdog (one embedded in a request's state) now; cancel is
// called with the cause of the bound that passed first (errTotalTimeout, errFirstByteTimeout
// or errIdleTimeout).
func (w *watchdog) start(cancel context.CancelCauseFunc, total, firstByte time.Duration) {
	w.base, w.total, w.firstByte, w.cancel = time.Now(), total, firstByte, cancel
	w.mu.Lock()
	w.t = time.AfterFunc(min(total, firstByte), w.fire)
	w.mu.Unlock()
}

// end cancels with the cause of the bound that passed. w.mu is held.
func (w *watchdog) end(cause error) {
	w.cause = cause
	w.cancel(cause)
}

// fired returns the cause the watchdog canceled with, nil if it did not (or w is nil).
func (w *watchdog) fired() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cause
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	now := time.Since(w.base)
	if now >= w.total {
		w.end(errTotalTimeout)
		return
	}
	next := w.total - now
	if !w.reading {
		if now >= w.firstByte {
			w.end(errFirstByteTimeout)
			return
		}
		next = min(next, w.firstByte-now)
	} else {
		quiet := now - time.Duration(w.last.Load())
		if quiet >= w.idle {
			w.end(errIdleTimeout)
			return
		}
		next = min(next, w.idle-quiet)
	}
	w.t.Reset(next)
}

// read switches to (or restarts) the idle bound, counted from now: the headers came, or the
// drain after the stream's end begins with a bound of its own.
func (w *watchdog) read(idle time.Duration) {
	now := time.Since(w.base)
	w.last.Store(int64(now))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.reading, w.idle = true, idle
	w.t.Reset(max(0, min(idle, w.total-now)))
}

// data notes bytes received now.
func (w *watchdog) data() { w.last.Store(int64(time.Since(w.base))) }

// stop ends the watchdog; no bound fires after it returns.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}
