package otlp

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/inferprobe/inferprobe/prober"
)

// traceKey carries a record's TraceContext to recordIDs through the span's start context.
type traceKey struct{}

// recordIDs is an ID generator that gives a request's span the IDs its traceparent carried,
// so the span the exporter makes after the fact is the parent the server saw.
type recordIDs struct{}

// NewIDs implements sdktrace.IDGenerator.
func (recordIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if tc, ok := ctx.Value(traceKey{}).(prober.TraceContext); ok && tc.Valid() {
		return tc.TraceID, tc.SpanID
	}
	var tid trace.TraceID
	var sid trace.SpanID
	_, _ = rand.Read(tid[:])
	_, _ = rand.Read(sid[:])
	return tid, sid
}

// NewSpanID implements sdktrace.IDGenerator.
func (recordIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	var sid trace.SpanID
	_, _ = rand.Read(sid[:])
	return sid
}

// spanBatcher is a span processor that batches ended spans and exports them from a
// goroutine of its own. Unlike the SDK's batch processor it counts what it drops (a full
// buffer) and what failed exports lose, which the daemon exposes.
type spanBatcher struct {
	exp        sdktrace.SpanExporter
	timeout    time.Duration
	flushEvery time.Duration
	t          *Telemetry

	mu      sync.Mutex
	pending []sdktrace.ReadOnlySpan
	stopped bool
	stopCtx context.Context // the Shutdown's, set before quit closes

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

func newSpanBatcher(exp sdktrace.SpanExporter, timeout, flushEvery time.Duration, t *Telemetry) *spanBatcher {
	b := &spanBatcher{exp: exp, timeout: timeout, flushEvery: flushEvery, t: t,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go b.run() // owned: Shutdown stops it
	return b
}

// OnStart implements sdktrace.SpanProcessor.
func (b *spanBatcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor: it never blocks.
func (b *spanBatcher) OnEnd(s sdktrace.ReadOnlySpan) {
	b.mu.Lock()
	if b.stopped || len(b.pending) >= maxPendingSpans {
		b.mu.Unlock()
		b.t.drop(SignalTraces, 1)
		return
	}
	b.pending = append(b.pending, s)
	full := len(b.pending) >= spanBatch
	b.mu.Unlock()
	if full {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

func (b *spanBatcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.flushEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			b.flush(context.Background())
		case <-b.wake:
			b.flush(context.Background())
		case <-b.quit:
			b.mu.Lock()
			ctx := b.stopCtx
			b.mu.Unlock()
			b.flush(ctx)
			return
		}
	}
}

// flush exports what is pending, a batch at a time, each within the export timeout.
func (b *spanBatcher) flush(parent context.Context) {
	for {
		b.mu.Lock()
		n := min(len(b.pending), spanBatch)
		batch := append([]sdktrace.ReadOnlySpan(nil), b.pending[:n]...)
		b.pending = append(b.pending[:0], b.pending[n:]...)
		b.mu.Unlock()
		if n == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(parent, b.timeout)
		err := b.exp.ExportSpans(ctx, batch)
		cancel()
		if err != nil {
			b.t.exportFailed(SignalTraces, err, n)
		}
		if parent.Err() != nil {
			return
		}
	}
}

// ForceFlush implements sdktrace.SpanProcessor: it asks the goroutine to export now.
func (b *spanBatcher) ForceFlush(context.Context) error {
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// Shutdown implements sdktrace.SpanProcessor: pending spans are exported within ctx, then
// the exporter is shut down. What is still pending when ctx ends is counted as dropped.
func (b *spanBatcher) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	already := b.stopped
	b.stopped, b.stopCtx = true, ctx
	b.mu.Unlock()
	if already {
		return nil
	}
	close(b.quit)
	// A stalled export still running ends at its own timeout; the goroutine then exits.
	select {
	case <-b.done:
	case <-ctx.Done():
	}
	b.mu.Lock()
	left := len(b.pending)
	b.pending = nil
	b.mu.Unlock()
	if left > 0 {
		b.t.drop(SignalTraces, left)
	}
	return b.exp.Shutdown(ctx)
}
