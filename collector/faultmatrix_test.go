package collector

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
	"github.com/inferprobe/inferprobe/traffic"
)

// TestFaultMatrix runs the real run loop, client and collector against the simulator (and, for
// faults a server process cannot produce on purpose, against small 127.0.0.1 servers) with one
// fault on at a time. Each fault must land in its result class and nowhere else, the pacer must
// keep its rate however the server fails (released = finished + in flight + dropped), the
// in-flight cap must hold, and the goroutines must come back to where they were. The pacer's
// releases (finished + dropped once the loop stopped) can never exceed rate × elapsed + 1.
func TestFaultMatrix(t *testing.T) {
	const (
		rate        = 20.0
		maxInFlight = 4
		runFor      = 1200 * time.Millisecond
	)
	sim := func(set func(*simulator.Config)) func(t *testing.T) (string, func()) {
		return func(t *testing.T) (string, func()) {
			cfg := simulator.DefaultConfig()
			cfg.TTFTBase, cfg.TTFTPerPromptToken, cfg.ITL, cfg.ITLJitter = time.Millisecond, 0, time.Millisecond, 0
			cfg.StatsSize = 0
			set(&cfg)
			s, err := simulator.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s.Handler())
			return ts.URL, func() { s.Close(); ts.Close() }
		}
	}
	raw := func(h http.HandlerFunc, tls bool) func(t *testing.T) (string, func()) {
		return func(t *testing.T) (string, func()) {
			ts := httptest.NewUnstartedServer(h)
			if tls {
				ts.StartTLS()
			} else {
				ts.Start()
			}
			return ts.URL, func() { ts.CloseClientConnections(); ts.Close() }
		}
	}
	sseHeaders := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
	}
	endless := func(w http.ResponseWriter, r *http.Request) {
		sseHeaders(w, r)
		_, _ = io.WriteString(w, "data: ")
		chunk := []byte(strings.Repeat("a", 4096))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	slowLoris := func(w http.ResponseWriter, r *http.Request) {
		sseHeaders(w, r)
		for r.Context().Err() == nil { // one keep-alive byte at a time: never idle, never done
			if _, err := io.WriteString(w, ":"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	tests := []struct {
		name   string
		server func(t *testing.T) (string, func())
		edit   func(*config.Target)
		want   string
	}{
		{"500", sim(func(c *simulator.Config) { c.Error500Rate = 1 }), nil, prober.ResultHTTP5xx},
		{"429 with Retry-After", sim(func(c *simulator.Config) { c.Error429Rate = 1 }), nil, prober.ResultHTTP429},
		{"reset before headers", sim(func(c *simulator.Config) { c.ResetRate = 1 }), nil, prober.ResultConnection},
		{"reset mid-stream", sim(func(c *simulator.Config) { c.ResetMidStreamRate = 1 }), nil, prober.ResultStreamTruncated},
		{"stall past the idle timeout", sim(func(c *simulator.Config) { c.StallRate, c.StallDuration = 1, 2*time.Second }),
			func(tg *config.Target) { tg.IdleTimeout = 100 * time.Millisecond }, prober.ResultTimeout},
		{"truncated without finish", sim(func(c *simulator.Config) { c.TruncateRate = 1 }), nil, prober.ResultStreamTruncated},
		{"malformed JSON", sim(func(c *simulator.Config) { c.MalformedRate = 1 }), nil, prober.ResultProtocol},
		{"endless line past the size cap", raw(endless, false),
			func(tg *config.Target) { tg.MaxResponseBytes = 64 << 10 }, prober.ResultProtocol},
		{"slow-loris response", raw(slowLoris, false),
			func(tg *config.Target) { tg.Timeout, tg.IdleTimeout = 250*time.Millisecond, 100*time.Millisecond }, prober.ResultTimeout},
		{"TLS handshake failure", raw(sseHeaders, true), nil, prober.ResultConnection}, // untrusted certificate
		{"finish_reason abort", sim(func(c *simulator.Config) { c.AbortRate = 1 }), nil, prober.ResultAborted},
		{"empty stream", sim(func(c *simulator.Config) { c.EmptyRate = 1 }), nil, prober.ResultEmpty},
		{"multi-token chunks", sim(func(c *simulator.Config) { c.ChunkTokens = 4 }), nil, prober.ResultSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			url, stop := tc.server(t)
			scheme := "http"
			if strings.HasPrefix(url, "https") {
				scheme = "https"
			}
			c := config.Config{Targets: []config.Target{{Name: "f", URL: url, Model: "inferprobe-sim",
				Timeout: 2 * time.Second, Traffic: config.Traffic{MaxInFlight: maxInFlight},
				Request: config.Request{MaxTokens: 8, InputTokens: config.FixedTokens(8)}}}}
			c.ApplyDefaults(prober.ConfigExtension{}, traffic.ConfigExtension{})
			tg := c.Targets[0]
			if tc.edit != nil {
				tc.edit(&tg)
			}
			client, err := prober.NewClient(tg)
			if err != nil {
				t.Fatal(err)
			}
			info := &prober.TargetInfo{Name: "f", Model: tg.Model}
			probe := NewProbe()
			probe.Register(info)
			pacer := &countingPacer{Pacer: traffic.NewConstant(rate)}
			counted := &countingClient{Client: client}
			runner := prober.NewRunner(prober.RunnerConfig{
				Target: info, Pacer: pacer,
				Source:      traffic.NewPromptSource(traffic.PromptOptions{InputTokens: 8, MaxTokens: 8, CacheBust: true, Seed: 1}),
				Client:      counted,
				Gate:        prober.NewGate(prober.WarmupConfig{MaxDuration: time.Millisecond}, nil),
				Observer:    probe,
				MaxInFlight: maxInFlight,
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			start := time.Now()
			go func() { defer close(done); runner.Run(ctx) }()
			peak := 0
			// At least runFor, and until a few requests finished: on a loaded machine a TLS
			// handshake alone can take longer than runFor.
			for now := start; now.Before(start.Add(runFor)) || (counted.done.Load() < 8 && now.Before(start.Add(15*time.Second))); now = time.Now() {
				peak = max(peak, runner.InFlight())
				time.Sleep(5 * time.Millisecond)
			}
			// Stop releasing first, then count: gathering takes long on a loaded machine, and
			// the pacer would go on releasing meanwhile. Requests cut short by the stop are
			// canceled (inferprobe's own doing) and are not a class the fault produced.
			stoppedAt := time.Now()
			cancel()
			<-done
			elapsed := stoppedAt.Sub(start).Seconds()
			if c, ok := client.(interface{ Close() }); ok {
				c.Close()
			}
			stop()
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(probe)
			counts := map[string]float64{}
			finished, inFlight := 0.0, sample(t, reg, "inferprobe_in_flight_requests", nil)
			for _, res := range prober.Results {
				n := sample(t, reg, "inferprobe_requests_total", map[string]string{"result": res}) +
					sample(t, reg, "inferprobe_warmup_requests_total", map[string]string{"result": res})
				counts[res] = n
				finished += n
			}
			dropped := sample(t, reg, "inferprobe_requests_dropped_total", nil)
			if inFlight != 0 {
				t.Errorf("%v requests in flight after the run loop returned", inFlight)
			}

			if counts[tc.want] < 5 {
				t.Errorf("%v requests of class %s, want most of the %.0f sent (%s, counts %v)", counts[tc.want], tc.want, rate*elapsed, scheme, counts)
			}
			for res, n := range counts {
				if res != tc.want && res != prober.ResultCanceled && n > 0 {
					t.Errorf("%v requests counted as %s, want every one as %s", n, res, tc.want)
				}
			}
			// Every arrival the pacer gave is accounted for, finished or dropped, never skipped
			// (the one the stop interrupted may be neither); the pacer never runs ahead of its
			// rate, and keeps up with it however the server fails (the lower bound is loose: a
			// starved test process on a loaded machine falls behind without any fault).
			released := finished + dropped
			if given := float64(pacer.given.Load()); released < given-1 || released > given {
				t.Errorf("released %v (finished %v, dropped %v) but the pacer gave %v arrivals", released, finished, dropped, given)
			}
			if want := rate * elapsed; released < 0.5*want || released > want+2 {
				t.Errorf("released %v (finished %v, in flight %v, dropped %v) in %.2fs, want about %.0f: the rate was not held",
					released, finished, inFlight, dropped, elapsed, want)
			}
			if peak > maxInFlight {
				t.Errorf("%d requests in flight, over the cap of %d", peak, maxInFlight)
			}
			var now int
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if now = runtime.NumGoroutine(); now <= baseline || time.Now().After(deadline) {
					break
				}
			}
			if now > baseline {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines after the run, %d before:\n%s", now, baseline, buf[:runtime.Stack(buf, true)])
			}
			t.Logf("%s: %v of %v released, %v dropped, peak in flight %d", tc.want, counts[tc.want], released, dropped, peak)
		})
	}
}

// countingPacer counts the arrivals its pacer gave out.
type countingPacer struct {
	traffic.Pacer
	given atomic.Int64
}

func (p *countingPacer) Next(n uint64) (time.Duration, bool) {
	at, ok := p.Pacer.Next(n)
	if ok {
		p.given.Add(1)
	}
	return at, ok
}

// countingClient counts finished requests.
type countingClient struct {
	prober.Client
	done atomic.Int64
}

func (c *countingClient) Do(ctx context.Context, req traffic.Request, rec *prober.Record) {
	c.Client.Do(ctx, req, rec)
	c.done.Add(1)
}
