// Command load drives the engine (the same pipeline the daemon builds: pacer plan, prompt
// source, OpenAI client, run loop and the Prometheus probe collector) against a separately
// running simulator at a series of rates, or in closed loop at a series of concurrencies, and
// prints for each step: requested versus achieved rate, schedule delay p50/p99, dropped
// requests, client CPU-seconds per 1000 requests and peak RSS. With --via=run each step goes
// through bench.Run instead, as `inferprobe run` does (the report builder and the progress
// goroutine besides the engine), and the figures are the report's load_summary.
//
//	inferprobe simulate --listen-address=127.0.0.1:18000 --itl=1ms --ttft-base=5ms --max-num-seqs=4096 &
//	go run ./bench/load --url=http://127.0.0.1:18000
//	go run ./bench/load --url=http://127.0.0.1:18000 --concurrency=256
//	go run ./bench/load --url=http://127.0.0.1:18000 --via=run
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/inferprobe/inferprobe/bench"
	"github.com/inferprobe/inferprobe/collector"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

func main() { os.Exit(run()) }

// run is main with its exit status returned, so the profiles' deferred writes happen.
func run() int {
	url := flag.String("url", "http://127.0.0.1:18000", "simulator root URL (loopback)")
	rates := flag.String("rates", "100,500,1000,2000", "comma-separated request rates (req/s)")
	concurrency := flag.String("concurrency", "", "comma-separated closed-loop concurrencies (instead of --rates)")
	duration := flag.Duration("duration", 20*time.Second, "length of each step")
	maxTokens := flag.Int("max-tokens", 16, "output tokens per request (ignore_eos)")
	inputTokens := flag.Int("input-tokens", 32, "prompt tokens per request")
	maxInFlight := flag.Int("max-in-flight", 2000, "in-flight cap")
	bodyOut := flag.String("body-out", "", "write the JSON body of the engine's first request to this file and exit (the plain-HTTP reference sends it)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the steps to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile (every allocation sampled) of the steps to this file")
	client := flag.String("client", "inferprobe", "inferprobe: the target's own client; plain: a reference client that sends the same bodies with net/http and reads each response to its end unparsed, as a plain-HTTP load generator does (the engine's cost without the stream's measurement)")
	via := flag.String("via", "engine", "engine: each step on engine.New with a statistics observer; run: through bench.Run, as `inferprobe run` (figures from the report's load_summary)")
	flag.Parse()
	if *via != "engine" && *via != "run" {
		fmt.Fprintln(os.Stderr, "--via: want engine or run, not", *via)
		return 2
	}
	var newClient func(config.Target) (prober.Client, error)
	switch *client {
	case "inferprobe":
	case "plain":
		if *via != "engine" {
			fmt.Fprintln(os.Stderr, "--client=plain runs with --via=engine only")
			return 2
		}
		newClient = newPlainClient
	default:
		fmt.Fprintln(os.Stderr, "--client: want inferprobe or plain, not", *client)
		return 2
	}
	if *bodyOut != "" {
		if err := writeBody(*bodyOut, *url, *maxTokens, *inputTokens, *maxInFlight); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}

	if *memProfile != "" {
		runtime.MemProfileRate = 1
		defer writeHeapProfile(*memProfile)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	steps, closed := *rates, false
	if *concurrency != "" {
		steps, closed = *concurrency, true
	}
	fmt.Printf("%-9s %-9s %-9s %-8s %-10s %-10s %-8s %-8s %-12s %-9s %s\n",
		"mode", "requested", "achieved", "ratio", "delay_p50", "delay_p99", "dropped", "errors", "cpu_s/1000", "rss_MiB", "results")
	for _, s := range strings.Split(steps, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad step:", s)
			return 2
		}
		var res result
		if *via == "run" {
			res, err = benchStep(*url, v, closed, *duration, *maxTokens, *inputTokens, *maxInFlight)
		} else {
			res, err = step(*url, v, closed, *duration, *maxTokens, *inputTokens, *maxInFlight, newClient)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		mode, ratio := "rate", res.achieved/v
		if closed {
			mode, ratio = "conc", 0
		}
		if *via == "run" {
			mode = "run-" + mode
		}
		fmt.Printf("%-9s %-9.0f %-9.1f %-8.4f %-10s %-10s %-8d %-8d %-12.3f %-9.1f %v\n",
			mode, v, res.achieved, ratio, fmtDur(res.delayP50), fmtDur(res.delayP99),
			res.dropped, res.errors, res.cpuPer1000, res.rssMiB, res.results)
	}
	return 0
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

type result struct {
	achieved           float64
	delayP50, delayP99 time.Duration
	dropped, errors    int
	cpuPer1000, rssMiB float64
	results            map[string]int
}

// stats records schedule delay and outcomes of every request. It observes through the
// engine's queue, as every observer besides the probe collector does, so its cost is part of
// what is measured.
type stats struct {
	mu          sync.Mutex
	delays      []time.Duration
	first, last time.Time
	dropped     int
	results     map[string]int
}

func (s *stats) Observe(ev prober.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Kind {
	case prober.EventRequestDropped:
		s.dropped++
	case prober.EventRequestFinished:
		r := ev.Record
		s.delays = append(s.delays, r.ScheduleDelay())
		if s.first.IsZero() || r.Intended.Before(s.first) {
			s.first = r.Intended
		}
		if r.Start.After(s.last) {
			s.last = r.Start
		}
		s.results[r.Result]++
	}
}

// step runs one stage of the given rate (or concurrency) for d through the engine: a target
// with one stage, run once.
// newClient, when set, builds the target's client instead of the registry (--client=plain).
func step(url string, v float64, closed bool, d time.Duration, maxTokens, inputTokens, maxInFlight int, newClient func(config.Target) (prober.Client, error)) (result, error) {
	stage := config.Stage{Rate: v, Duration: d}
	if closed {
		stage = config.Stage{Concurrency: int(v), Duration: d}
	}
	cfg, err := loadConfig(url, stage, maxTokens, inputTokens, maxInFlight)
	if err != nil {
		return result{}, err
	}
	st := &stats{results: map[string]int{}}
	set := engine.New(context.Background(), engine.Options{Observers: []prober.Observer{st}, Once: true, NewClient: newClient})
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	if err := set.Apply(cfg); err != nil {
		return result{}, err
	}
	_ = set.Wait(context.Background())
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	set.Close(context.Background())

	cpu := tv(after.Utime) - tv(before.Utime) + tv(after.Stime) - tv(before.Stime)
	st.mu.Lock()
	defer st.mu.Unlock()
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
		span := st.last.Sub(st.first).Seconds()
		if !closed {
			span += 1 / v
		}
		res.achieved = float64(n) / span
		res.cpuPer1000 = cpu / float64(n) * 1000
	}
	return res, nil
}

// benchStep runs one stage of the given rate (or concurrency) for d through bench.Run, with
// the probe collector and the progress goroutine `inferprobe run` has (its lines discarded),
// and reads the figures from the report: the achieved rate, schedule delay (DDSketch
// percentiles, ±0.5%) and drops of the stage's load_summary.
func benchStep(url string, v float64, closed bool, d time.Duration, maxTokens, inputTokens, maxInFlight int) (result, error) {
	stage := config.Stage{Rate: v, Duration: d}
	if closed {
		stage = config.Stage{Concurrency: int(v), Duration: d}
	}
	cfg, err := loadConfig(url, stage, maxTokens, inputTokens, maxInFlight)
	if err != nil {
		return result{}, err
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	rep, err := bench.Run(context.Background(), cfg, bench.Options{Probe: collector.NewProbe(), Progress: io.Discard,
		ProgressInterval: time.Second})
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	if err != nil {
		return result{}, err
	}
	st := rep.Runs[0].Targets[0].Stages[0]
	res := result{dropped: int(st.Load.Dropped), results: map[string]int{}, rssMiB: float64(after.Maxrss) / 1024,
		achieved: st.Load.AchievedRate}
	var n int64
	for k, c := range st.Requests {
		res.results[k] = int(c)
		n += c
		if k != prober.ResultSuccess {
			res.errors += int(c)
		}
	}
	if closed {
		res.achieved = float64(n) / d.Seconds()
	}
	if sd := st.Load.ScheduleDelay; sd != nil && sd.Count() > 0 {
		res.delayP50 = time.Duration(sd.Quantile(0.5) * 1e9)
		res.delayP99 = time.Duration(sd.Quantile(0.99) * 1e9)
	}
	if n > 0 {
		cpu := tv(after.Utime) - tv(before.Utime) + tv(after.Stime) - tv(before.Stime)
		res.cpuPer1000 = cpu / float64(n) * 1000
	}
	return res, nil
}

// loadConfig is the validated one-target, one-stage configuration every step runs.
func loadConfig(url string, stage config.Stage, maxTokens, inputTokens, maxInFlight int) (*config.Config, error) {
	cfg := &config.Config{Targets: []config.Target{{
		Name: "load", URL: url, Model: "inferprobe-sim",
		Timeout: 30 * time.Second, IdleTimeout: 10 * time.Second,
		Traffic: config.Traffic{Pacer: traffic.KindStages, Stages: []config.Stage{stage}, MaxInFlight: maxInFlight, Seed: 1},
		Request: config.Request{InputTokens: config.FixedTokens(inputTokens), MaxTokens: maxTokens, IgnoreEOS: true},
		Warmup:  config.Warmup{MaxDuration: time.Minute},
	}}}
	cfg.ApplyDefaults(engine.Extensions()...)
	cfg.Targets[0].Warmup = config.Warmup{MaxDuration: time.Minute} // opens at once
	if err := cfg.Validate(engine.Extensions()...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// writeBody writes the request body the engine's client builds for the first request of the
// load steps' target: the plain-HTTP reference sends these bytes, so both clients ask the
// server for the same work.
func writeBody(path, url string, maxTokens, inputTokens, maxInFlight int) error {
	cfg, err := loadConfig(url, config.Stage{Rate: 1, Duration: time.Second}, maxTokens, inputTokens, maxInFlight)
	if err != nil {
		return err
	}
	t := cfg.Targets[0]
	plan, err := traffic.PlanFor(t.Traffic, 1)
	if err != nil {
		return err
	}
	src, err := traffic.NewSource(t, plan, 1)
	if err != nil {
		return err
	}
	c, err := prober.NewOpenAIClient(t)
	if err != nil {
		return err
	}
	defer c.Close()
	body, err := c.Body(src.Next(0))
	if err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o644)
}

func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
