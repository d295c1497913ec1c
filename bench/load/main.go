// Command load drives the prober engine (pacer, prompt source, OpenAI client, run loop and
// the Prometheus probe collector, exactly as the daemon wires them) against a separately
// running simulator at a series of rates, and prints for each: requested versus achieved rate,
// schedule delay p50/p99, dropped requests, client CPU-seconds per 1000 requests and peak RSS.
//
//	inferprobe simulate --listen-address=127.0.0.1:18000 --itl=1ms --ttft-base=5ms --max-num-seqs=4096 &
//	go run ./bench/load --url=http://127.0.0.1:18000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/inferprobe/inferprobe/collector"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:18000", "simulator root URL (loopback)")
	rates := flag.String("rates", "100,500,1000,2000", "comma-separated request rates (req/s)")
	duration := flag.Duration("duration", 20*time.Second, "length of each step")
	maxTokens := flag.Int("max-tokens", 16, "output tokens per request (ignore_eos)")
	inputTokens := flag.Int("input-tokens", 32, "prompt tokens per request")
	maxInFlight := flag.Int("max-in-flight", 2000, "in-flight cap")
	flag.Parse()

	fmt.Printf("%-9s %-9s %-8s %-10s %-10s %-8s %-8s %-12s %-9s %s\n",
		"requested", "achieved", "ratio", "delay_p50", "delay_p99", "dropped", "errors", "cpu_s/1000", "rss_MiB", "results")
	for _, s := range strings.Split(*rates, ",") {
		rate, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad rate:", s)
			os.Exit(2)
		}
		res, err := step(*url, rate, *duration, *maxTokens, *inputTokens, *maxInFlight)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%-9.0f %-9.1f %-8.4f %-10s %-10s %-8d %-8d %-12.3f %-9.1f %v\n",
			rate, res.achieved, res.achieved/rate, fmtDur(res.delayP50), fmtDur(res.delayP99),
			res.dropped, res.errors, res.cpuPer1000, res.rssMiB, res.results)
	}
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

// limited ends a pacer after a duration.
type limited struct {
	traffic.Pacer
	end time.Duration
}

func (l limited) Next(n uint64) (time.Duration, bool) {
	at, ok := l.Pacer.Next(n)
	return at, ok && at < l.end
}

type result struct {
	achieved           float64
	delayP50, delayP99 time.Duration
	dropped, errors    int
	cpuPer1000, rssMiB float64
	results            map[string]int
}

// stats records schedule delay and outcomes of every request, beside the real collector.
type stats struct {
	prober.Observer // the Prometheus probe collector, so its cost is measured too
	mu              sync.Mutex
	delays          []time.Duration
	first, last     time.Time
	dropped         int
	results         map[string]int
}

func (s *stats) RequestDropped(t *prober.TargetInfo) {
	s.Observer.RequestDropped(t)
	s.mu.Lock()
	s.dropped++
	s.mu.Unlock()
}

func (s *stats) RequestFinished(r *prober.Record) {
	s.Observer.RequestFinished(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays = append(s.delays, r.ScheduleDelay())
	if s.first.IsZero() || r.Intended.Before(s.first) {
		s.first = r.Intended
	}
	if r.Start.After(s.last) {
		s.last = r.Start
	}
	s.results[r.Result]++
}

func step(url string, rate float64, d time.Duration, maxTokens, inputTokens, maxInFlight int) (result, error) {
	tgt := config.Target{
		Name: "load", URL: url, Path: "/v1/chat/completions", API: config.APIOpenAIChat, Model: "inferprobe-sim",
		Timeout: 30 * time.Second, ConnectTimeout: 5 * time.Second, FirstByteTimeout: 30 * time.Second,
		IdleTimeout: 10 * time.Second, MaxResponseBytes: 16 << 20,
		Traffic: config.Traffic{MaxInFlight: maxInFlight},
		Request: config.Request{MaxTokens: maxTokens, IgnoreEOS: true},
	}
	client, err := prober.NewOpenAIClient(tgt)
	if err != nil {
		return result{}, err
	}
	defer client.Close()
	info := &prober.TargetInfo{Name: "load", Model: "inferprobe-sim"}
	st := &stats{Observer: collector.NewProbe(), results: map[string]int{}}
	runner := prober.NewRunner(prober.RunnerConfig{
		Target:      info,
		Pacer:       limited{traffic.NewConstant(rate), d},
		Source:      traffic.NewPromptSource(traffic.PromptOptions{InputTokens: inputTokens, MaxTokens: maxTokens, CacheBust: true, Seed: 1}),
		Client:      client,
		Gate:        prober.NewGate(prober.WarmupConfig{}, nil),
		Observer:    st,
		MaxInFlight: maxInFlight,
	})
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	runner.Run(context.Background())
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)

	cpu := tv(after.Utime) - tv(before.Utime) + tv(after.Stime) - tv(before.Stime)
	n := len(st.delays)
	slices.Sort(st.delays)
	res := result{dropped: st.dropped, results: st.results, rssMiB: float64(after.Maxrss) / 1024}
	for k, v := range st.results {
		if k != prober.ResultSuccess {
			res.errors += v
		}
	}
	if n > 0 {
		res.delayP50 = st.delays[n/2]
		res.delayP99 = st.delays[min(n-1, n*99/100)]
		span := st.last.Sub(st.first).Seconds() + 1/rate
		res.achieved = float64(n) / span
		res.cpuPer1000 = cpu / float64(n) * 1000
	}
	return res, nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
