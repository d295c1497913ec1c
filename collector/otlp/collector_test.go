package otlp_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/internal/testkit"
)

// otelcolPath finds the collector deploy/tools/install.sh builds: $INFERPROBE_OTELCOL, else
// the tool directory's otelcol-<version>-<manifest sum>. Missing, the test skips, except in CI
// (CI=true), where it fails: .ci/run installs it and CI must never pass without running it.
func otelcolPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("INFERPROBE_OTELCOL")
	if p == "" {
		version := ""
		if f, err := os.Open(filepath.Join("..", "..", "deploy", "tools", "versions")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "OTELCOL_VERSION="); ok {
					version = v
				}
			}
			f.Close()
		}
		manifest, _ := os.ReadFile(filepath.Join("..", "..", "deploy", "tools", "otelcol", "manifest.yaml"))
		sum := sha256.Sum256(manifest)
		dir := os.Getenv("INFERPROBE_TOOLS")
		if dir == "" {
			out, _ := exec.Command("go", "env", "GOPATH").Output()
			dir = filepath.Join(strings.TrimSpace(string(out)), "inferprobe-tools")
		}
		p = filepath.Join(dir, "otelcol-"+version+"-"+hex.EncodeToString(sum[:])[:12], "otelcol-inferprobe")
	}
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("no OpenTelemetry Collector at %s (deploy/tools/install.sh builds it; INFERPROBE_OTELCOL names another)", p)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; .ci/run installs it, and this check never skips in CI")
		}
		t.Skip(msg)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A real OpenTelemetry Collector receives our OTLP/gRPC export, parses it and forwards it
// (its otlphttp exporter) to the in-process receiver: what arrives there went through the
// Collector's own decoding, so our export is what the Collector accepts.
func TestRealCollector(t *testing.T) {
	bin := otelcolPath(t)
	sink := startReceiver(t, config.OTelHTTPProtobuf, false)
	in := freeAddr(t)
	cfgFile := filepath.Join(t.TempDir(), "otelcol.yaml")
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
exporters:
  debug:
    verbosity: basic
  otlphttp:
    endpoint: %s
    compression: gzip
    retry_on_failure:
      enabled: false
processors: {}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [otlphttp, debug]
    traces:
      receivers: [otlp]
      exporters: [otlphttp, debug]
`, in, sink.URL)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", "file:"+cfgFile)
	log := &testkit.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("collector log:\n%s", log.String())
		}
	})
	testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond, "the collector's OTLP port", func() bool {
		c, err := net.DialTimeout("tcp", in, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	sim := startTracedSim(t)
	ratio := 1.0
	h := startHarness(t, sim.URL, &config.OTel{Endpoint: "http://" + in, Protocol: config.OTelGRPC, Interval: 200 * time.Millisecond,
		Timeout: 2 * time.Second, Traces: &config.OTelTraces{SamplingRatio: &ratio}}, 20, time.Second)
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	if err := h.set.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	h.drain(t)
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	h.tel.Close(closeCtx)
	finished, _, _, _ := h.sink.get()
	testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond, "every span through the collector", func() bool {
		return len(sink.spans()) >= finished
	})
	if n := len(sink.spans()); n != finished {
		t.Errorf("%d spans through the collector for %d requests", n, finished)
	}
	testkit.WaitFor(t, 30*time.Second, 50*time.Millisecond, "the metrics through the collector", func() bool {
		got, _ := sink.lastMetrics()
		return got["inferprobe_requests_total"] != nil && got["gen_ai.client.operation.duration"] != nil
	})
	got, res := sink.lastMetrics()
	if res["service.name"] != "inferprobe" {
		t.Errorf("resource through the collector: %v", res)
	}
	fams := h.gather(t)
	var want float64
	for _, m := range fams["inferprobe_requests_total"].GetMetric() {
		want += m.GetCounter().GetValue()
	}
	var sum float64
	for _, dp := range got["inferprobe_requests_total"].GetSum().GetDataPoints() {
		sum += dp.GetAsDouble()
	}
	// The collector may forward an earlier export last; the final one carries the total.
	testkit.WaitFor(t, 10*time.Second, 50*time.Millisecond, "the final requests_total", func() bool {
		got, _ := sink.lastMetrics()
		sum = 0
		for _, dp := range got["inferprobe_requests_total"].GetSum().GetDataPoints() {
			sum += dp.GetAsDouble()
		}
		return sum == want
	})
	if sum != want || want == 0 {
		t.Errorf("inferprobe_requests_total %v through the collector, %v on /metrics", sum, want)
	}
	if !strings.Contains(log.String(), "inferprobe_requests_total") && !strings.Contains(log.String(), "metrics") {
		t.Logf("debug exporter log: %s", log.String())
	}
}
