package recent

import (
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/prober"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func finished(s *Store, r *prober.Record) {
	s.Observe(prober.Event{Kind: prober.EventRequestFinished, Target: r.Target, Record: r})
}

func TestStoreRingAndWindow(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	s := New(Options{Requests: 3, Window: time.Minute, Buckets: 6, Now: c.now})
	tgt := &prober.TargetInfo{Name: "a"}
	rec := &prober.Record{Target: tgt}
	for i := range 5 {
		rec.Reset()
		rec.Target, rec.Start, rec.Result = tgt, c.t, prober.ResultSuccess
		rec.Chunks, rec.FirstToken, rec.LastToken, rec.OutputTokens = 3, time.Duration(10+i)*time.Millisecond, 30*time.Millisecond, 3
		rec.Gaps = append(rec.Gaps, 5*time.Millisecond, 15*time.Millisecond)
		finished(s, rec)
		c.t = c.t.Add(5 * time.Second)
	}
	rec.Reset()
	rec.Target, rec.Start, rec.Result, rec.Status = tgt, c.t, prober.ResultHTTP5xx, 500
	finished(s, rec)
	rec.Gaps = append(rec.Gaps[:0], time.Hour) // the store copied: this must not show

	sum := s.Summary("a")
	if sum.Requests != 6 || sum.OK != 5 || sum.SuccessRatio != 5.0/6 {
		t.Errorf("requests %d ok %d ratio %v", sum.Requests, sum.OK, sum.SuccessRatio)
	}
	if len(sum.Recent) != 3 || sum.Recent[0].Record.Result != prober.ResultHTTP5xx || sum.Recent[0].ID != 6 || sum.Recent[2].ID != 4 {
		t.Fatalf("recent %+v", sum.Recent)
	}
	if sum.TTFTP50 != 0.012 || sum.ITLP99 != 0.015 || sum.ITLP50 != 0.005 && sum.ITLP50 != 0.015 {
		t.Errorf("ttft p50 %v itl p50 %v p99 %v", sum.TTFTP50, sum.ITLP50, sum.ITLP99)
	}
	got, ok := s.Get("a", 5)
	if !ok || len(got.Record.Gaps) != 2 || got.Record.Gaps[1] != 15*time.Millisecond {
		t.Errorf("Get(5) = %+v, %v", got, ok)
	}
	if _, ok := s.Get("a", 1); ok {
		t.Error("a request that left the ring is still there")
	}
	if _, ok := s.Get("b", 5); ok {
		t.Error("another target's request found")
	}
	// A minute later the window is empty, the ring is kept.
	c.t = c.t.Add(2 * time.Minute)
	if sum := s.Summary("a"); sum.Requests != 0 || len(sum.Recent) != 3 || sum.TTFTP50 != 0 {
		t.Errorf("after the window: %+v", sum)
	}
	s.Forget("a")
	if sum := s.Summary("a"); len(sum.Recent) != 0 {
		t.Error("Forget kept the target")
	}
}

func TestStoreBoundsValues(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	s := New(Options{Now: c.now})
	tgt := &prober.TargetInfo{Name: "a"}
	rec := &prober.Record{Target: tgt, Result: prober.ResultSuccess, Chunks: 1, OutputTokens: 1}
	for range 10 * maxPerBucket {
		finished(s, rec)
	}
	s.mu.Lock()
	n := len(s.targets["a"].buckets[0].ttft)
	s.mu.Unlock()
	if n > maxPerBucket || n < maxPerBucket/2 {
		t.Errorf("one interval keeps %d values, want at most %d", n, maxPerBucket)
	}
}

// TestStoreTPOTPercentiles: TPOT p50 and p99 are the nearest-rank percentiles of the
// requests' own TPOTs, (t_last − t_first) / (N − 1), and a request without a TPOT (one token
// chunk) adds none.
func TestStoreTPOTPercentiles(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	s := New(Options{Window: time.Minute, Now: c.now})
	tgt := &prober.TargetInfo{Name: "a"}
	for i := range 100 {
		rec := &prober.Record{Target: tgt, Start: c.t, Result: prober.ResultSuccess, Chunks: 3, OutputTokens: 3,
			FirstToken: 10 * time.Millisecond, LastToken: 10*time.Millisecond + time.Duration(2*(i+1))*time.Millisecond}
		finished(s, rec) // TPOT (i+1) ms
	}
	finished(s, &prober.Record{Target: tgt, Start: c.t, Result: prober.ResultSuccess, Chunks: 1, OutputTokens: 1,
		FirstToken: 10 * time.Millisecond, LastToken: 10 * time.Millisecond})
	sum := s.Summary("a")
	if sum.TPOTP50 != 0.050 || sum.TPOTP99 != 0.099 {
		t.Errorf("TPOT p50 %v p99 %v, want 0.05 and 0.099", sum.TPOTP50, sum.TPOTP99)
	}
	if sum.Requests != 101 || sum.OK != 101 {
		t.Errorf("requests %d ok %d, want 101", sum.Requests, sum.OK)
	}
}
