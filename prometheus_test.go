package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/simulator"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// promServer is a Prometheus process scraping the daemon every second.
type promServer struct {
	addr string
}

func startPrometheus(t *testing.T, bin, target string, flags ...string) *promServer {
	t.Helper()
	return startPrometheusConfig(t, bin, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: inferprobe
    static_configs:
      - targets: [%q]
`, target), flags...)
}

// startPrometheusConfig runs Prometheus with the configuration cfg until the test ends.
func startPrometheusConfig(t *testing.T, bin, cfg string, flags ...string) *promServer {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=warn",
	}, flags...)
	cmd := exec.CommandContext(ctx, bin, args...)
	logs := &testkit.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs)
		}
	})
	waitFor(t, 30*time.Second, "prometheus to be ready", func() bool {
		resp, err := testClient.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return &promServer{addr: addr}
}

// query runs an instant query and returns the first sample's value, if any.
func (p *promServer) query(t *testing.T, q string) (float64, bool) {
	t.Helper()
	resp, err := testClient.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s", q, body.Error)
	}
	if len(body.Data.Result) == 0 {
		return 0, false
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// TestRealPrometheusScrapesAndQueries scrapes the daemon with a real Prometheus, once with
// classic histograms and once with native histograms, and checks the TTFT quantile it computes
// against what the prober measured.
func TestRealPrometheusScrapesAndQueries(t *testing.T) {
	bin := testkit.Tool(t, "prometheus", "apt-get install prometheus")
	_, simURL := startSim(t, func(c *simulator.Config) {
		c.TTFTBase = 45 * time.Millisecond
		c.TTFTPerPromptToken = 50 * time.Microsecond
		c.ITL = 3 * time.Millisecond
		c.ITLJitter = 0
	})
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {rate: 20}
    request: {input_tokens: 100, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 2, min_duration: 0s}
    slo: {ttft: 100ms}
`, simURL))
	d := startDaemon(t, cfg)
	target := strings.TrimPrefix(d.base, "http://")

	classic := startPrometheus(t, bin, target)
	native := startPrometheus(t, bin, target, "--enable-feature=native-histograms")

	queries := []struct {
		name string
		p    *promServer
		q    string
	}{
		{"classic", classic, `histogram_quantile(0.5, sum by (le) (rate(inferprobe_time_to_first_token_seconds_bucket{target="sim"}[10s])))`},
		{"native", native, `histogram_quantile(0.5, sum(rate(inferprobe_time_to_first_token_seconds{target="sim"}[10s])))`},
	}
	got := map[string]float64{}
	waitFor(t, 60*time.Second, "both Prometheus servers to compute a TTFT median", func() bool {
		for _, q := range queries {
			if v, ok := q.p.query(t, q.q); ok {
				got[q.name] = v
			}
		}
		return len(got) == len(queries)
	})

	var ttfts []time.Duration
	for _, r := range d.rec.records("sim") {
		if !r.warmup && r.result == prober.ResultSuccess {
			ttfts = append(ttfts, r.ttft)
		}
	}
	truth := median(ttfts).Seconds()
	t.Logf("TTFT median: prober %.4fs, Prometheus classic %.4fs, native %.4fs", truth, got["classic"], got["native"])
	// Classic buckets interpolate within 40–60 ms; native buckets are within 1.1× of the value.
	if got["classic"] < 0.04 || got["classic"] > 0.06 {
		t.Errorf("classic median %.4f outside the 40–60ms bucket holding the true median %.4f", got["classic"], truth)
	}
	if rel := math.Abs(got["native"]-truth) / truth; rel > 0.1 {
		t.Errorf("native median %.4f off the true median %.4f by %.0f%%", got["native"], truth, rel*100)
	}

	// The SLO threshold is a classic bucket boundary, so this ratio is exact (all requests
	// take about 50ms, well under 100ms).
	ratio, ok := classic.query(t, `sum(rate(inferprobe_time_to_first_token_seconds_bucket{target="sim",le="0.1"}[10s])) / sum(rate(inferprobe_time_to_first_token_seconds_count{target="sim"}[10s]))`)
	if !ok || ratio < 0.99 {
		t.Errorf("share of TTFT under the 100ms SLO bucket = %v (%v), want 1", ratio, ok)
	}
	if v, ok := classic.query(t, `inferprobe_warmup_complete{target="sim"}`); !ok || v != 1 {
		t.Errorf("warmup_complete = %v (%v)", v, ok)
	}
	if v, ok := native.query(t, `up{job="inferprobe"}`); !ok || v != 1 {
		t.Errorf("native-histogram Prometheus: up = %v (%v)", v, ok)
	}
}
