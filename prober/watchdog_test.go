package prober

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// cancelRecorder is the watchdog's cancel function: it keeps the first cause and when it came.
type cancelRecorder struct {
	mu    sync.Mutex
	cause error
	at    time.Time
	calls int
	done  chan struct{}
}

func newCancelRecorder() *cancelRecorder { return &cancelRecorder{done: make(chan struct{})} }

func (c *cancelRecorder) cancel(cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == 1 {
		c.cause, c.at = cause, time.Now()
		close(c.done)
	}
}

func (c *cancelRecorder) wait(t *testing.T) (time.Time, error) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog never fired")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at, c.cause
}

// startWatchdog starts a watchdog of its own, as a request's state holds one.
func startWatchdog(cancel context.CancelCauseFunc, total, firstByte time.Duration) *watchdog {
	w := &watchdog{}
	w.start(cancel, total, firstByte)
	return w
}

// TestWatchdogBounds: each bound cancels with its own cause, never before it passed: first
// byte and total from the start, idle from the latest read (reads keep a stream alive), and a
// new idle bound from the drain's start; a stopped watchdog cancels nothing.
func TestWatchdogBounds(t *testing.T) {
	const long = time.Hour
	t.Run("first byte", func(t *testing.T) {
		c := newCancelRecorder()
		start := time.Now()
		w := startWatchdog(c.cancel, long, 30*time.Millisecond)
		defer w.stop()
		at, cause := c.wait(t)
		if !errors.Is(cause, errFirstByteTimeout) || at.Sub(start) < 30*time.Millisecond {
			t.Errorf("cause %v after %v, want the first-byte timeout after ≥ 30ms", cause, at.Sub(start))
		}
		if got := w.fired(); got != cause {
			t.Errorf("fired() %v, want the cause it canceled with", got)
		}
	})
	t.Run("total", func(t *testing.T) {
		c := newCancelRecorder()
		start := time.Now()
		w := startWatchdog(c.cancel, 80*time.Millisecond, long)
		defer w.stop()
		w.read(long)
		stop := make(chan struct{})
		var feeder sync.WaitGroup
		feeder.Go(func() { // a stream that never goes idle
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					w.data()
				}
			}
		})
		at, cause := c.wait(t)
		close(stop)
		feeder.Wait()
		if !errors.Is(cause, errTotalTimeout) || at.Sub(start) < 80*time.Millisecond {
			t.Errorf("cause %v after %v, want the total timeout after ≥ 80ms", cause, at.Sub(start))
		}
	})
	t.Run("idle counts from the latest read", func(t *testing.T) {
		c := newCancelRecorder()
		w := startWatchdog(c.cancel, long, long)
		defer w.stop()
		const idle = 60 * time.Millisecond
		w.read(idle)
		// Each read's clock before and after the call: a read that had returned before the
		// watchdog fired was seen by it.
		var (
			mu    sync.Mutex
			reads = [][2]time.Time{{time.Now(), time.Now()}} // read(idle) counts as one
		)
		// Reads every 10 ms for 300 ms, five idle bounds: a watchdog that ignored them would
		// fire at 60 ms.
		stop := make(chan struct{})
		var feeder sync.WaitGroup
		feeder.Go(func() {
			end := time.Now().Add(300 * time.Millisecond)
			for time.Now().Before(end) {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				before := time.Now()
				w.data()
				mu.Lock()
				reads = append(reads, [2]time.Time{before, time.Now()})
				mu.Unlock()
			}
		})
		at, cause := c.wait(t)
		close(stop)
		feeder.Wait()
		var last time.Time // the start of the latest read that returned before the timeout
		for _, r := range reads {
			if !r[1].After(at) && r[0].After(last) {
				last = r[0]
			}
		}
		// On a loaded machine the feeder may itself pause past the bound (then the timeout
		// is right); what may never happen is a timeout sooner than idle after a read.
		if !errors.Is(cause, errIdleTimeout) || at.Sub(last) < idle {
			t.Errorf("cause %v %v after the latest read, want the idle timeout ≥ %v after it", cause, at.Sub(last), idle)
		}
	})
	t.Run("drain bound", func(t *testing.T) {
		c := newCancelRecorder()
		w := startWatchdog(c.cancel, long, long)
		defer w.stop()
		w.read(long)
		start := time.Now()
		w.read(30 * time.Millisecond)
		at, cause := c.wait(t)
		if !errors.Is(cause, errIdleTimeout) || at.Sub(start) < 30*time.Millisecond {
			t.Errorf("cause %v after %v, want the idle timeout after ≥ 30ms", cause, at.Sub(start))
		}
	})
	t.Run("stopped", func(t *testing.T) {
		c := newCancelRecorder()
		w := startWatchdog(c.cancel, 200*time.Millisecond, 200*time.Millisecond)
		w.stop()
		w.read(10 * time.Millisecond) // after stop: no effect
		time.Sleep(300 * time.Millisecond)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.calls != 0 {
			t.Errorf("a stopped watchdog canceled (%v)", c.cause)
		}
		if got := w.fired(); got != nil {
			t.Errorf("fired() %v on a watchdog that never fired", got)
		}
	})
}
