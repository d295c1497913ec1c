package simulator

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/internal/testkit"
)

// TestQueueing runs two requests through one running slot: the second waits for the whole
// first one, the waiting gauge shows it, and its wait counts into its TTFT.
func TestQueueing(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxNumSeqs = 1
	cfg.TTFTBase = 5 * time.Millisecond
	cfg.ITL = 10 * time.Millisecond
	s, ts := startServer(t, cfg)

	metric := func(name string) float64 {
		v, ok := testkit.Value(scrape(t, ts), name, map[string]string{"model_name": "inferprobe-sim"})
		if !ok {
			t.Fatalf("%s missing", name)
		}
		return v
	}
	body := func() map[string]any {
		return map[string]any{"prompt": words(10), "max_tokens": 40, "ignore_eos": true}
	}

	var wg sync.WaitGroup
	sums := make([]streamSummary, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		sums[0] = stream(context.Background(), ts, "/v1/completions", body())
	}()
	waitFor(t, "the first request to run", 2*time.Second, func() bool { return metric("vllm:num_requests_running") == 1 })
	if kv := metric("vllm:kv_cache_usage_perc"); kv <= 0 || kv > 1 {
		t.Errorf("kv_cache_usage_perc %v while a request runs", kv)
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		sums[1] = stream(context.Background(), ts, "/v1/completions", body())
	}()
	waitFor(t, "the second request to wait", 2*time.Second, func() bool { return metric("vllm:num_requests_waiting") == 1 })
	if r := metric("vllm:num_requests_running"); r != 1 {
		t.Errorf("running %v while one waits, want 1", r)
	}
	wg.Wait()

	for i, sum := range sums {
		if sum.status != 200 || !sum.done || sum.tokens != 40 {
			t.Fatalf("request %d: %+v", i, sum)
		}
	}
	// The second's first token comes after the first's last.
	if !sums[1].firstTok.After(sums[0].tokTimes[39]) {
		t.Errorf("second request's first token at %v, before the first request ended at %v", sums[1].firstTok, sums[0].tokTimes[39])
	}
	st := s.Stats()
	if len(st.Requests) != 2 {
		t.Fatalf("%d requests recorded", len(st.Requests))
	}
	first, second := st.Requests[0], st.Requests[1]
	// The first runs 5 ms + 39×10 ms; the second arrived early in it. The margins are wide
	// so a loaded host cannot fail the test.
	if first.Queue > 100*time.Millisecond || second.Queue < 200*time.Millisecond {
		t.Errorf("queue times %s and %s", first.Queue, second.Queue)
	}
	if second.TTFT < second.Queue+cfg.TTFTBase {
		t.Errorf("second TTFT %s does not include its queue time %s", second.TTFT, second.Queue)
	}
	if w, r := metric("vllm:num_requests_waiting"), metric("vllm:num_requests_running"); w != 0 || r != 0 {
		t.Errorf("after both: waiting %v running %v", w, r)
	}
	if kv := metric("vllm:kv_cache_usage_perc"); kv != 0 {
		t.Errorf("kv_cache_usage_perc %v when idle", kv)
	}
	if q := metric("vllm:request_queue_time_seconds"); q != 2 {
		t.Errorf("queue time observations %v, want 2", q)
	}
}

// TestCancellation checks that a client leaving, while running or while queued, frees its
// place at once and is counted.
func TestCancellation(t *testing.T) {
	tests := []struct {
		name string
		// queued cancels a request that waits behind a long one instead of the running one.
		queued bool
	}{
		{"running", false},
		{"queued", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.MaxNumSeqs = 1
			cfg.ITL = 10 * time.Millisecond
			s, ts := startServer(t, cfg)
			long := map[string]any{"prompt": "a", "max_tokens": 2000, "ignore_eos": true, "stream": true}

			// The long request; it is the victim in the "running" case.
			ctxLong, cancelLong := context.WithCancel(context.Background())
			defer cancelLong()
			respLong := post(t, ctxLong, ts, "/v1/completions", long)
			defer respLong.Body.Close()
			readFirstToken(t, respLong)

			victimCancel := cancelLong
			if tt.queued {
				ctxQ, cancelQ := context.WithCancel(context.Background())
				defer cancelQ()
				respQ := post(t, ctxQ, ts, "/v1/completions", long) // headers come before admission
				defer respQ.Body.Close()
				waitFor(t, "a queued request", 2*time.Second, func() bool {
					_, w, _ := s.sched.counts()
					return w == 1
				})
				victimCancel = cancelQ
			}
			victimCancel()
			waitFor(t, "the cancellation to be counted", 2*time.Second, func() bool {
				return s.Stats().Outcomes[OutcomeCanceled] == 1
			})
			if tt.queued {
				if _, w, _ := s.sched.counts(); w != 0 {
					t.Fatalf("waiting %d after the queued client left", w)
				}
				cancelLong() // free the slot for the next request
			}

			sum := stream(context.Background(), ts, "/v1/completions", map[string]any{"prompt": "a", "max_tokens": 3, "ignore_eos": true})
			if sum.status != 200 || !sum.done || sum.tokens != 3 {
				t.Fatalf("request after the cancellation: %+v", sum)
			}
			st := s.Stats()
			last := st.Requests[len(st.Requests)-1]
			if last.Outcome != OutcomeSuccess || last.Queue > time.Second {
				t.Errorf("next request %q queued %s", last.Outcome, last.Queue)
			}
			fams := scrape(t, ts)
			// Only the admitted long request aborts; a queued one never started.
			if v, _ := testkit.Value(fams, "vllm:request_success_total", map[string]string{"finished_reason": "abort"}); v != 1 {
				t.Errorf("abort count %v, want 1", v)
			}
		})
	}
}

// readFirstToken reads a stream until its first token event.
func readFirstToken(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	buf := make([]byte, 1)
	var seen []byte
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			if err == io.EOF {
				t.Fatal("stream ended before a token")
			}
			t.Fatal(err)
		}
		seen = append(seen, buf[0])
		if len(seen) >= 2 && string(seen[len(seen)-2:]) == "\n\n" {
			return
		}
	}
}

// TestCloseAbortsInFlight checks that Close ends running and queued requests promptly.
func TestCloseAbortsInFlight(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxNumSeqs = 1
	s, ts := startServer(t, cfg)
	var wg sync.WaitGroup
	sums := make([]streamSummary, 2)
	for i := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := map[string]any{"prompt": "a", "max_tokens": 30000, "ignore_eos": true}
			sums[i] = stream(context.Background(), ts, "/v1/completions", body)
		}()
	}
	waitFor(t, "one running, one waiting", 2*time.Second, func() bool {
		r, w, _ := s.sched.counts()
		return r == 1 && w == 1
	})
	s.Close()
	wg.Wait()
	for i, sum := range sums {
		if sum.done {
			t.Errorf("request %d completed despite Close", i)
		}
	}
	waitFor(t, "both to be counted as canceled", 2*time.Second, func() bool {
		return s.Stats().Outcomes[OutcomeCanceled] == 2
	})

	// After Close, new requests are refused outright.
	resp := post(t, context.Background(), ts, "/v1/completions", map[string]any{"prompt": "a", "stream": true})
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || s.Stats().Outcomes[OutcomeUnavailable] != 1 {
		t.Errorf("request after Close: status %d, outcomes %v", resp.StatusCode, s.Stats().Outcomes)
	}
}
