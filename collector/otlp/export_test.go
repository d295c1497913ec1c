package otlp

import (
	"context"

	"github.com/inferprobe/inferprobe/prober"
)

// RecorderOf returns the observer behind the running pipeline's queue (what its goroutine
// runs per record), nil when export is off: benchmarks drive it directly to measure the
// background's cost apart from the request goroutine's.
func RecorderOf(t *Telemetry) prober.Observer {
	if p := t.cur.Load(); p != nil {
		return p.recorder
	}
	return nil
}

// DivertQueue replaces the running pipeline's queue with one in front of next, so that a
// benchmark measures the hand-off into the queue without the recorder's work beside it. It
// returns a function that stops the new queue.
func DivertQueue(t *Telemetry, next prober.Observer) (stop func()) {
	p := t.cur.Load()
	old := p.queue
	q := prober.NewQueue(next, t.queueLimit)
	done := make(chan struct{})
	go func() { defer close(done); q.Run(context.Background()) }()
	p.queue = q
	return func() {
		q.Close(context.Background())
		<-done
		p.queue = old
	}
}

// ParseHeaders is parseHeaders, for the fuzz target.
var ParseHeaders = parseHeaders

// ResourceAttrs is the resource newResource builds for s, as a map.
func ResourceAttrs(s Settings, version string) (map[string]string, error) {
	r, err := newResource(s, version)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, kv := range r.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m, nil
}
