package server

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/inferprobe/inferprobe/config"
)

// TestFailedScrapeDropsNormalisedSeries: after a good scrape, each kind of failure counts its
// reason, sets up to 0 and removes every normalised series, so no stale value looks fresh; the
// next good scrape brings them back.
func TestFailedScrapeDropsNormalisedSeries(t *testing.T) {
	vllm := string(readFixture(t, "vllm.txt"))
	om := string(readFixture(t, "vllm.om"))
	tests := []struct {
		name   string
		resp   response
		reason string
	}{
		{"garbage line", response{contentType: ctText, body: []byte(vllm + "this is not { a metric\n")}, ReasonParse},
		{"truncated in a label set", response{contentType: ctText, body: []byte(vllm[:strings.Index(vllm, "vllm:prompt_tokens_total{")+30])}, ReasonParse},
		{"no final newline", response{contentType: ctText, body: []byte(strings.TrimSuffix(vllm, "\n"))}, ReasonParse},
		{"bad escape in a normalised family", response{contentType: ctText, body: []byte("vllm:num_requests_running{model_name=\"a\\q\"} 1\n")}, ReasonParse},
		{"bad value in a family nobody reads", response{contentType: ctText, body: []byte(vllm + "vllm:other_thing{a=\"b\"} twelve\n")}, ReasonParse},
		{"TYPE after samples", response{contentType: ctText, body: []byte("vllm:num_requests_running 1\n# TYPE vllm:num_requests_running gauge\n")}, ReasonParse},
		{"openmetrics without # EOF", response{contentType: ctOM, body: []byte(strings.TrimSuffix(om, "# EOF\n"))}, ReasonParse},
		{"openmetrics with data after # EOF", response{contentType: ctOM, body: []byte(om + "vllm:num_requests_running 1\n")}, ReasonParse},
		{"too many labels", response{contentType: ctText, body: []byte("vllm:num_requests_running{" + strings.Repeat("a=\"1\",", maxLabelsPerSeries+1) + "} 1\n")}, ReasonParse},
		{"protobuf length prefix beyond the body", response{contentType: ctProto, body: []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a}}, ReasonParse},
		{"protobuf garbage", response{contentType: ctProto, body: []byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff}}, ReasonParse},
		{"HTTP 503", response{status: http.StatusServiceUnavailable, body: []byte("loading model")}, ReasonHTTPStatus},
		{"HTTP 404", response{status: http.StatusNotFound}, ReasonHTTPStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t, response{contentType: ctText, body: []byte(vllm)})
			s := newTestScraper(t, srv.URL, nil)
			scrapeOK(t, s)
			if n := count(t, s, normalisedNames...); n == 0 {
				t.Fatal("no normalised series after a good scrape")
			}

			srv.set(tt.resp)
			scrapeFails(t, s, tt.reason)
			if got := value(t, s, MetricUp, nil); got != 0 {
				t.Errorf("up = %v after a failed scrape", got)
			}
			if got := value(t, s, MetricScrapeErrors, map[string]string{"reason": tt.reason}); got != 1 {
				t.Errorf("scrape_errors_total{reason=%q} = %v, want 1", tt.reason, got)
			}
			if n := count(t, s, normalisedNames...); n != 0 {
				t.Errorf("%d normalised series survive a failed scrape", n)
			}
			if n := count(t, s, MetricScrapeDuration); n != 1 {
				t.Errorf("%d duration series, want 1", n)
			}

			srv.serve(ctText, []byte(vllm))
			scrapeOK(t, s)
			if got := value(t, s, MetricUp, nil); got != 1 {
				t.Errorf("up = %v after recovery", got)
			}
			if got := value(t, s, MetricRequestsRunning, nil); got != 5 {
				t.Errorf("requests_running = %v after recovery, want 5", got)
			}
		})
	}
}

// TestScrapeTimeout: a server that never answers within the timeout counts as a timeout.
func TestScrapeTimeout(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hold the request until the scraper gives up or the test ends
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	s := newTestScraper(t, srv.URL, func(o *Options) { o.Config.Timeout = 50 * time.Millisecond })
	start := time.Now()
	scrapeFails(t, s, ReasonTimeout)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("scrape took %s with a 50ms timeout", elapsed)
	}
	if got := value(t, s, MetricScrapeErrors, map[string]string{"reason": ReasonTimeout}); got != 1 {
		t.Errorf("timeouts = %v", got)
	}
}

// TestSlowBodyTimesOut: headers arrive, the body stalls: still a timeout, not a parse error.
func TestSlowBodyTimesOut(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctText)
		_, _ = w.Write([]byte("vllm:num_requests_running 1\n"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	s := newTestScraper(t, srv.URL, func(o *Options) { o.Config.Timeout = 50 * time.Millisecond })
	scrapeFails(t, s, ReasonTimeout)
}

// TestOversizedBody: a body over the limit is refused, whether announced by Content-Length or
// streamed without one.
func TestOversizedBody(t *testing.T) {
	body := readFixture(t, "vllm.txt")
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "content-length", true: "chunked"}[chunked], func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ctText)
				if chunked {
					_, _ = w.Write(body[:100])
					w.(http.Flusher).Flush() // no Content-Length from here on
					_, _ = w.Write(body[100:])
					return
				}
				_, _ = w.Write(body)
			}))
			t.Cleanup(srv.Close)
			s := newTestScraper(t, srv.URL, func(o *Options) { o.MaxBodyBytes = int64(len(body) - 1) })
			scrapeFails(t, s, ReasonTooLarge)

			exact := newTestScraper(t, srv.URL, func(o *Options) { o.MaxBodyBytes = int64(len(body)) })
			scrapeOK(t, exact)
		})
	}
}

// TestDeadEndpoint: nothing listens on the port: up 0 and a connection error, repeatedly.
func TestDeadEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/metrics"
	_ = l.Close()
	s := newTestScraper(t, url, nil)
	for range 2 {
		scrapeFails(t, s, ReasonConnection)
	}
	if got := value(t, s, MetricUp, nil); got != 0 {
		t.Errorf("up = %v", got)
	}
	if got := value(t, s, MetricScrapeErrors, map[string]string{"reason": ReasonConnection}); got != 2 {
		t.Errorf("connection errors = %v, want 2", got)
	}
}

// TestBeforeFirstScrape: a new scraper reports up 0 and zeroed counters, and no duration yet.
func TestBeforeFirstScrape(t *testing.T) {
	s := newTestScraper(t, "http://127.0.0.1:1/metrics", nil)
	if got := value(t, s, MetricUp, nil); got != 0 {
		t.Errorf("up = %v", got)
	}
	if n := count(t, s, MetricScrapeErrors); n != len(reasons) {
		t.Errorf("%d error series, want one per reason (%d)", n, len(reasons))
	}
	if n := count(t, s, MetricScrapeDuration); n != 0 {
		t.Errorf("duration exposed before any scrape")
	}
}

// TestNegotiation: the Accept header prefers protobuf, then OpenMetrics, then text; a Go server
// (client_golang) answers protobuf, a server that only knows text and OpenMetrics answers
// OpenMetrics, and both are read.
func TestNegotiation(t *testing.T) {
	reg := prometheus.NewRegistry()
	running := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vllm:num_requests_running", Help: "Running."}, []string{"model_name"})
	running.WithLabelValues("m").Set(7)
	reg.MustRegister(running)

	var gotContentType string
	goServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(w, r)
		gotContentType = w.Header().Get("Content-Type")
	}))
	t.Cleanup(goServer.Close)
	s := newTestScraper(t, goServer.URL, nil)
	scrapeOK(t, s)
	if !strings.HasPrefix(gotContentType, "application/vnd.google.protobuf") {
		t.Errorf("client_golang answered %q, want protobuf", gotContentType)
	}
	if got := value(t, s, MetricRequestsRunning, map[string]string{"model_name": "m"}); got != 7 {
		t.Errorf("requests_running = %v, want 7", got)
	}

	// Like Python's prometheus_client: OpenMetrics whenever the Accept header names it.
	om := readFixture(t, "vllm.om")
	text := readFixture(t, "vllm.txt")
	pyServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "application/openmetrics-text") {
			w.Header().Set("Content-Type", ctOM)
			_, _ = w.Write(om)
			return
		}
		w.Header().Set("Content-Type", ctText)
		_, _ = w.Write(text)
	}))
	t.Cleanup(pyServer.Close)
	s = newTestScraper(t, pyServer.URL, nil)
	scrapeOK(t, s)
	compareGolden(t, s, "vllm.golden")
}

// TestMissingContentType: a server that sends no usable content type is read as text.
func TestMissingContentType(t *testing.T) {
	for _, ct := range []string{"", "text/plain", "application/octet-stream"} {
		srv := newFakeServer(t, response{contentType: ct, body: readFixture(t, "llamacpp.txt")})
		s := newTestScraper(t, srv.URL, nil)
		scrapeOK(t, s)
		if got := value(t, s, MetricRequestsRunning, nil); got != 2 {
			t.Errorf("content type %q: requests_running = %v, want 2", ct, got)
		}
	}
}

// TestRequestHeaders: configured headers are sent, with Accept and the scrape timeout.
func TestRequestHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	s := newTestScraper(t, srv.URL, func(o *Options) {
		o.Header = http.Header{"Authorization": {"Bearer s3cret"}}
		o.Config.Timeout = 1500 * time.Millisecond
	})
	scrapeOK(t, s)
	h := <-got
	for k, want := range map[string]string{
		"Authorization": "Bearer s3cret", "Accept": acceptHeader, "X-Prometheus-Scrape-Timeout-Seconds": "1.5",
	} {
		if h.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, h.Get(k), want)
		}
	}
}

// TestRunStopsWithContext: Run scrapes at once and on every tick, and returns when its context
// ends, even in the middle of a scrape (goleak checks that nothing is left behind).
func TestRunStopsWithContext(t *testing.T) {
	srv := newFakeServer(t, response{contentType: ctText, body: readFixture(t, "llamacpp.txt")})
	s := newTestScraper(t, srv.URL, func(o *Options) { o.Config.Interval = 5 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	deadline := time.After(10 * time.Second)
	for srv.requests.Load() < 3 {
		select {
		case <-deadline:
			t.Fatalf("only %d scrapes in 10s with a 5ms interval", srv.requests.Load())
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := value(t, s, MetricUp, nil); got != 1 {
		t.Errorf("up = %v", got)
	}

	// Cancelled in the middle of a scrape: nothing counted as the server's fault.
	block := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-block:
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(block) })
	s = newTestScraper(t, hung.URL, nil)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s.Run(ctx)
	for _, r := range reasons {
		if got := value(t, s, MetricScrapeErrors, map[string]string{"reason": r}); got != 0 {
			t.Errorf("shutdown counted as a %s error", r)
		}
	}
}

// TestNewScraperRejects: options that cannot work are refused with the target named.
func TestNewScraperRejects(t *testing.T) {
	good := config.Metrics{URL: "http://127.0.0.1:1/metrics", Interval: time.Second, Timeout: time.Second, Engine: EngineAuto}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no target", func(o *Options) { o.Target = "" }, "empty target"},
		{"no url", func(o *Options) { o.Config.URL = "" }, "metrics.url"},
		{"zero interval", func(o *Options) { o.Config.Interval = 0 }, "metrics.interval"},
		{"zero timeout", func(o *Options) { o.Config.Timeout = 0 }, "metrics.timeout"},
		{"unknown engine", func(o *Options) { o.Config.Engine = "ollama" }, "metrics.engine"},
		{"bad passthrough", func(o *Options) { o.Config.Passthrough = []string{"vllm:("} }, "metrics.passthrough"},
		{"negative limit", func(o *Options) { o.MaxBodyBytes = -1 }, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Target: "t", Config: good}
			tt.edit(&o)
			_, err := NewScraper(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := NewScraper(Options{Target: "t", Config: good}); err != nil {
		t.Errorf("valid options refused: %v", err)
	}
}
