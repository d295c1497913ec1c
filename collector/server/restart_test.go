package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// step is one scrape in a restart scenario: what the server answers, and whether it succeeds.
type step struct {
	resp response
	ok   bool
}

func okText(body string) step {
	return step{resp: response{contentType: ctText, body: []byte(body)}, ok: true}
}

var (
	down503 = step{resp: response{status: http.StatusServiceUnavailable}}
	garbage = step{resp: response{contentType: ctText, body: []byte("not { metrics\n")}}
)

// TestRestartDetection drives a scraper through scrape sequences and checks the restarts counted
// and the Rearm calls made, one per restart.
func TestRestartDetection(t *testing.T) {
	vllm := string(readFixture(t, "vllm.txt"))
	restartedVLLM := strings.Replace(vllm, "process_start_time_seconds 1.75e+09", "process_start_time_seconds 1.7500042e+09", 1)
	llama := string(readFixture(t, "llamacpp.txt"))
	llamaReset := strings.Replace(llama, "llamacpp:tokens_predicted_total 2048", "llamacpp:tokens_predicted_total 17", 1)
	llamaMore := strings.Replace(llama, "llamacpp:tokens_predicted_total 2048", "llamacpp:tokens_predicted_total 4096", 1)
	tgi := string(readFixture(t, "tgi.txt"))
	tgiReset := strings.Replace(tgi, "tgi_request_input_length_sum 20480", "tgi_request_input_length_sum 12", 1)

	tests := []struct {
		name             string
		recoveryFailures int
		steps            []step
		want             []string
	}{
		{"steady server", 0, []step{okText(vllm), okText(vllm), okText(llamaMore)}, nil},
		{"process start time changes", 0, []step{okText(vllm), okText(restartedVLLM), okText(restartedVLLM)}, []string{RestartProcessStartTime}},
		{"start time changes across a failure", 0, []step{okText(vllm), down503, okText(restartedVLLM)}, []string{RestartProcessStartTime}},
		{"same start time after failures is no restart", 0, []step{okText(vllm), down503, down503, okText(vllm)}, nil},
		{"token counter reset", 0, []step{okText(llama), okText(llamaReset)}, []string{RestartCounterReset}},
		{"token counter from a histogram sum resets", 0, []step{okText(tgi), okText(tgiReset)}, []string{RestartCounterReset}},
		{"counter growth is no restart", 0, []step{okText(llama), okText(llamaMore)}, nil},
		{"failures then recovery", 0, []step{okText(llama), down503, okText(llama)}, []string{RestartRecovery}},
		{"each outage is one restart", 0, []step{okText(llama), down503, down503, okText(llama), down503, okText(llama)}, []string{RestartRecovery, RestartRecovery}},
		{"recovery needs enough failures", 2, []step{okText(llama), down503, okText(llama)}, nil},
		{"enough failures", 2, []step{okText(llama), down503, down503, okText(llama)}, []string{RestartRecovery}},
		{"parse failures are not outages", 0, []step{okText(llama), garbage, okText(llama)}, nil},
		{"first success is only a baseline", 0, []step{down503, okText(llama), okText(llama)}, nil},
		{"one restart per scrape when signals agree", 0, []step{okText(vllm), down503, okText(strings.Replace(restartedVLLM, "15000.0", "1.0", 1))}, []string{RestartProcessStartTime}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, tt.steps[0].resp)
			gate := &fakeGate{}
			s := newTestScraper(t, srv.URL, func(o *Options) {
				o.Rearmer = gate
				o.RecoveryFailures = tt.recoveryFailures
			})
			for i, st := range tt.steps {
				srv.set(st.resp)
				if err := s.Scrape(t.Context()); (err == nil) != st.ok {
					t.Fatalf("step %d: scrape error %v, want ok=%v", i, err, st.ok)
				}
			}
			if got := gate.calls(); !slices.Equal(got, tt.want) {
				t.Errorf("Rearm calls = %q, want %q", got, tt.want)
			}
			if got := value(t, s, MetricRestarts, nil); got != float64(len(tt.want)) {
				t.Errorf("restarts_total = %v, want %d", got, len(tt.want))
			}
		})
	}
}

// TestRestartWithoutRearmer: restarts are still counted when nobody listens.
func TestRestartWithoutRearmer(t *testing.T) {
	llama := string(readFixture(t, "llamacpp.txt"))
	srv := newFakeServer(t, okText(llama).resp)
	s := newTestScraper(t, srv.URL, nil)
	scrapeOK(t, s)
	srv.set(down503.resp)
	scrapeFails(t, s, ReasonHTTPStatus)
	srv.set(okText(llama).resp)
	scrapeOK(t, s)
	if got := value(t, s, MetricRestarts, nil); got != 1 {
		t.Errorf("restarts_total = %v, want 1", got)
	}
}

// TestInherit: a scraper replacing another on reload keeps its counters and, for the same URL,
// its restart baseline; for another URL the baseline starts afresh.
func TestInherit(t *testing.T) {
	vllm := string(readFixture(t, "vllm.txt"))
	restarted := strings.Replace(vllm, "process_start_time_seconds 1.75e+09", "process_start_time_seconds 1.76e+09", 1)
	srv := newFakeServer(t, okText(vllm).resp)
	old := newTestScraper(t, srv.URL, nil)
	scrapeOK(t, old)
	srv.set(down503.resp)
	scrapeFails(t, old, ReasonHTTPStatus)

	srv.set(okText(restarted).resp)
	gate := &fakeGate{}
	same := newTestScraper(t, srv.URL, func(o *Options) { o.Rearmer = gate })
	same.Inherit(old)
	if got := value(t, same, MetricScrapeErrors, map[string]string{"reason": ReasonHTTPStatus}); got != 1 {
		t.Errorf("inherited http_status errors = %v, want 1", got)
	}
	scrapeOK(t, same)
	if got := gate.calls(); !slices.Equal(got, []string{RestartProcessStartTime}) {
		t.Errorf("Rearm calls after reload = %q, want one process_start_time", got)
	}

	other := newTestScraper(t, srv.URL+"/other", func(o *Options) { o.Rearmer = gate })
	other.Inherit(old)
	scrapeOK(t, other)
	if got := len(gate.calls()); got != 1 {
		t.Errorf("a scraper of another URL reported a restart from the old baseline")
	}
}

// TestScrapeNow: the probe path asks for a scrape at once after it re-armed the gate itself;
// Run scrapes without waiting for the interval, and the restart found is counted without a
// second Rearm. The flag lasts until a scrape succeeds, and only for one restart.
func TestScrapeNow(t *testing.T) {
	vllm := string(readFixture(t, "vllm.txt"))
	restarted := strings.Replace(vllm, "process_start_time_seconds 1.75e+09", "process_start_time_seconds 1.7500042e+09", 1)
	again := strings.Replace(vllm, "process_start_time_seconds 1.75e+09", "process_start_time_seconds 1.7600042e+09", 1)
	srv := newFakeServer(t, okText(vllm).resp)
	gate := &fakeGate{}
	s := newTestScraper(t, srv.URL, func(o *Options) { o.Rearmer = gate }) // interval: a minute
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitRequests := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for srv.requests.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d scrapes, want %d without waiting for the interval", srv.requests.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitRequests(1) // the first scrape: baseline
	srv.set(okText(restarted).resp)
	s.ScrapeNow()
	waitRequests(2)
	deadline := time.Now().Add(5 * time.Second)
	for value(t, s, MetricRestarts, nil) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the restart found by the scrape at once was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := gate.calls(); len(got) != 0 {
		t.Errorf("Rearm calls %q after ScrapeNow; the probe path re-armed already", got)
	}
	// A later restart re-arms as usual.
	srv.set(okText(again).resp)
	scrapeOK(t, s)
	if got := gate.calls(); !slices.Equal(got, []string{RestartProcessStartTime}) {
		t.Errorf("Rearm calls %q, want one process_start_time", got)
	}
}

// TestRecoveryOff: a negative RecoveryFailures turns the failures-then-recovery signal off.
func TestRecoveryOff(t *testing.T) {
	llama := string(readFixture(t, "llamacpp.txt"))
	srv := newFakeServer(t, okText(llama).resp)
	s := newTestScraper(t, srv.URL, func(o *Options) { o.RecoveryFailures = -1 })
	scrapeOK(t, s)
	srv.set(down503.resp)
	scrapeFails(t, s, ReasonHTTPStatus)
	srv.set(okText(llama).resp)
	scrapeOK(t, s)
	if got := value(t, s, MetricRestarts, nil); got != 0 {
		t.Errorf("restarts_total = %v with recovery off, want 0", got)
	}
}

// TestScrapeNowDuringAScrape: a ScrapeNow that comes while a scrape is in flight is not used
// up by that scrape (its answer predates the restart) but by the next one, which finds the
// restart and leaves the gate alone.
func TestScrapeNowDuringAScrape(t *testing.T) {
	vllm := string(readFixture(t, "vllm.txt"))
	restarted := strings.Replace(vllm, "process_start_time_seconds 1.75e+09", "process_start_time_seconds 1.7500042e+09", 1)
	var body atomic.Pointer[string]
	body.Store(&vllm)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		b := *body.Load()
		if requests.Add(1) == 2 {
			entered <- struct{}{}
			<-release // the old answer, held until ScrapeNow has come
		}
		w.Header().Set("Content-Type", ctText)
		_, _ = io.WriteString(w, b)
	}))
	t.Cleanup(srv.Close)
	gate := &fakeGate{}
	s := newTestScraper(t, srv.URL, func(o *Options) { o.Rearmer = gate })
	scrapeOK(t, s) // the baseline
	inFlight := make(chan error, 1)
	go func() { inFlight <- s.Scrape(t.Context()) }()
	<-entered
	s.ScrapeNow() // the probe path saw the server come back and re-armed the gate itself
	close(release)
	if err := <-inFlight; err != nil {
		t.Fatal(err)
	}
	body.Store(&restarted)
	scrapeOK(t, s) // started after ScrapeNow: it finds the restart
	if got := value(t, s, MetricRestarts, nil); got != 1 {
		t.Errorf("restarts %v, want 1", got)
	}
	if got := gate.calls(); len(got) != 0 {
		t.Errorf("Rearm calls %q: the scrape in flight used up ScrapeNow", got)
	}
}
