// Package recent keeps what the landing page shows of each target: its last requests (a
// bounded ring of copied records, each with an id a page can link to) and per-interval figures
// over the last minutes, computed from the records themselves (not from PromQL). It is an
// observer for the engine's queue: it copies what it keeps, so it never holds a record the
// prober reuses.
package recent

import (
	"slices"
	"sync"
	"time"

	"github.com/inferprobe/inferprobe/prober"
)

// Options size a Store.
type Options struct {
	// Requests is how many recent requests each target keeps (default 50).
	Requests int
	// Window is how far back the per-interval figures go (default 5 minutes), in Buckets
	// intervals (default 30).
	Window  time.Duration
	Buckets int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store keeps the recent requests and figures of every target.
type Store struct {
	opts Options

	mu      sync.Mutex
	targets map[string]*target
	nextID  uint64
}

type target struct {
	ring    []Request // newest last, at most opts.Requests
	buckets []bucket  // oldest first, one per interval, the newest covering now
}

// Request is one kept request.
type Request struct {
	// ID identifies the request on the page.
	ID uint64
	// At is when it was sent (t0).
	At time.Time
	// Record is a copy of its timing record (Target nil: the page knows the target).
	Record prober.Record
}

type bucket struct {
	start         time.Time
	total, ok     int
	ttft, itl, tp []float64 // seconds; per-bucket values for percentiles
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Requests <= 0 {
		opts.Requests = 50
	}
	if opts.Window <= 0 {
		opts.Window = 5 * time.Minute
	}
	if opts.Buckets <= 0 {
		opts.Buckets = 30
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{opts: opts, targets: map[string]*target{}}
}

// maxPerBucket bounds the values one interval keeps for percentiles, so a fast target cannot
// grow the store: past it, values are kept by reservoir-free decimation (every other one).
const maxPerBucket = 2048

// Observe implements prober.Observer.
func (s *Store) Observe(ev prober.Event) {
	if ev.Kind != prober.EventRequestFinished {
		return
	}
	r := ev.Record
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.targets[r.Target.Name]
	if t == nil {
		t = &target{}
		s.targets[r.Target.Name] = t
	}
	s.nextID++
	req := Request{ID: s.nextID, At: r.Start}
	if req.At.IsZero() {
		req.At = r.Intended
	}
	r.CopyTo(&req.Record)
	req.Record.Target = nil
	if len(t.ring) == s.opts.Requests {
		copy(t.ring, t.ring[1:])
		t.ring = t.ring[:len(t.ring)-1]
	}
	t.ring = append(t.ring, req)

	b := s.bucket(t, s.opts.Now())
	b.total++
	if r.Result != prober.ResultSuccess {
		return
	}
	b.ok++
	if ttft, ok := r.TTFT(); ok {
		b.ttft = keep(b.ttft, ttft.Seconds())
	}
	for i, g := range r.Gaps {
		k := max(r.GapTokenCount(i), 1)
		b.itl = keep(b.itl, g.Seconds()/float64(k))
	}
	if tpot, ok := r.TPOT(); ok {
		b.tp = keep(b.tp, tpot.Seconds())
	}
}

func keep(vs []float64, v float64) []float64 {
	if len(vs) >= maxPerBucket {
		// Halve, keeping every other value: the distribution stays, the memory bounded.
		n := 0
		for i := 0; i < len(vs); i += 2 {
			vs[n] = vs[i]
			n++
		}
		vs = vs[:n]
	}
	return append(vs, v)
}

// bucket returns the interval covering now, dropping intervals older than the window.
func (s *Store) bucket(t *target, now time.Time) *bucket {
	width := s.opts.Window / time.Duration(s.opts.Buckets)
	start := now.Truncate(width)
	if n := len(t.buckets); n == 0 || t.buckets[n-1].start.Before(start) {
		t.buckets = append(t.buckets, bucket{start: start})
	}
	cut := 0
	for cut < len(t.buckets) && now.Sub(t.buckets[cut].start) >= s.opts.Window {
		cut++
	}
	t.buckets = t.buckets[cut:]
	return &t.buckets[len(t.buckets)-1]
}

// Point is one interval's figures.
type Point struct {
	Start              time.Time
	Requests, OK       int
	TTFTP50, TTFTP99   float64
	ITLP50, ITLP99     float64
	TPOTP50, TPOTP99   float64
	TTFTCount, ITLSize int
}

// Summary is what the page shows of one target.
type Summary struct {
	// Requests and OK count the requests of the window; SuccessRatio is OK / Requests.
	Requests, OK int
	SuccessRatio float64
	// Percentiles over the window, in seconds (0 when nothing was measured).
	TTFTP50, TTFTP99, ITLP50, ITLP99, TPOTP50, TPOTP99 float64
	// Points are the window's intervals, oldest first.
	Points []Point
	// Recent are the kept requests, newest first.
	Recent []Request
	// Window is the span the figures cover.
	Window time.Duration
}

// Summary returns target's figures now.
func (s *Store) Summary(name string) Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := Summary{Window: s.opts.Window}
	t := s.targets[name]
	if t == nil {
		return sum
	}
	s.bucket(t, s.opts.Now()) // drop what fell out of the window
	var ttft, itl, tp []float64
	for _, b := range t.buckets {
		sum.Requests += b.total
		sum.OK += b.ok
		ttft = append(ttft, b.ttft...)
		itl = append(itl, b.itl...)
		tp = append(tp, b.tp...)
		sum.Points = append(sum.Points, Point{Start: b.start, Requests: b.total, OK: b.ok,
			TTFTP50: quantile(b.ttft, 0.5), TTFTP99: quantile(b.ttft, 0.99),
			ITLP50: quantile(b.itl, 0.5), ITLP99: quantile(b.itl, 0.99),
			TPOTP50: quantile(b.tp, 0.5), TPOTP99: quantile(b.tp, 0.99),
			TTFTCount: len(b.ttft), ITLSize: len(b.itl)})
	}
	if sum.Requests > 0 {
		sum.SuccessRatio = float64(sum.OK) / float64(sum.Requests)
	}
	sum.TTFTP50, sum.TTFTP99 = quantile(ttft, 0.5), quantile(ttft, 0.99)
	sum.ITLP50, sum.ITLP99 = quantile(itl, 0.5), quantile(itl, 0.99)
	sum.TPOTP50, sum.TPOTP99 = quantile(tp, 0.5), quantile(tp, 0.99)
	for i := len(t.ring) - 1; i >= 0; i-- {
		sum.Recent = append(sum.Recent, t.ring[i])
	}
	return sum
}

// Get returns target's kept request id.
func (s *Store) Get(name string, id uint64) (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.targets[name]
	if t == nil {
		return Request{}, false
	}
	for _, r := range t.ring {
		if r.ID == id {
			var cp Request
			cp.ID, cp.At = r.ID, r.At
			r.Record.CopyTo(&cp.Record)
			return cp, true
		}
	}
	return Request{}, false
}

// Forget drops a target (removed by a reload).
func (s *Store) Forget(name string) {
	s.mu.Lock()
	delete(s.targets, name)
	s.mu.Unlock()
}

// quantile is the exact quantile of vs (nearest rank), 0 when empty.
func quantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}
