// Command vegeta is the plain-HTTP reference of `make bench-load`: vegeta's attacker, used as a
// library, POSTs one fixed request body to a separately running simulator at a constant rate
// and reads every streamed response body to its end without parsing it, and the results go into
// vegeta's own metrics, as `vegeta report` would keep them. It prints the requests sent, their
// success ratio, the achieved rate and the process's CPU-seconds (user + system, getrusage) per
// 1000 requests over the attack, for scripts/bench-load.sh to set against inferprobe's engine at
// the same rate against the same server.
//
// It is its own module so that vegeta and its dependencies stay out of inferprobe's go.mod:
//
//	cd bench/vegeta && go build -o /tmp/vegeta-load . && /tmp/vegeta-load --url=... --body=body.json
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/pprof"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:18000/v1/chat/completions", "endpoint to POST to (loopback)")
	bodyFile := flag.String("body", "", "file holding the JSON request body (required)")
	rate := flag.Int("rate", 500, "requests per second")
	duration := flag.Duration("duration", 20*time.Second, "length of the attack")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the attack to this file")
	flag.Parse()
	if *bodyFile == "" {
		fmt.Fprintln(os.Stderr, "--body is required")
		os.Exit(2)
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Accept", "text/event-stream")
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: *url, Body: body, Header: hdr})
	// Defaults otherwise (keep-alive, the whole body read, workers grown as needed); a 30 s
	// timeout as the engine's load step has.
	attacker := vegeta.NewAttacker(vegeta.Timeout(30*time.Second), vegeta.MaxBody(-1))

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var m vegeta.Metrics
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: *rate, Per: time.Second}, *duration, "bench-load") {
		m.Add(res)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	m.Close()

	cpu := tv(after.Utime) - tv(before.Utime) + tv(after.Stime) - tv(before.Stime)
	var per1000 float64
	if m.Requests > 0 {
		per1000 = cpu / float64(m.Requests) * 1000
	}
	fmt.Printf("%-9s %-9s %-9s %-12s %-9s %s\n", "requests", "achieved", "success", "cpu_s/1000", "rss_MiB", "errors")
	fmt.Printf("%-9d %-9.1f %-9.4f %-12.3f %-9.1f %d\n", m.Requests, m.Rate, m.Success, per1000,
		float64(after.Maxrss)/1024, len(m.Errors))
	for _, e := range m.Errors {
		fmt.Fprintln(os.Stderr, "error:", e)
	}
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
