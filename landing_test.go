package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/simulator"
)

// browse renders url in headless Chromium and returns the DOM after the page loaded.
func browse(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=2000", "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v", url, err)
	}
	return string(out)
}

// TestLandingPageInABrowser: a real headless browser renders the landing page with each
// target's recent figures, its inline chart and its recent requests; every request link opens
// that request's timing record; an API key planted in the configuration appears on neither page.
func TestLandingPageInABrowser(t *testing.T) {
	chromium := testkit.Tool(t, "chromium", "apt-get install chromium")
	const key = "sk-landing-SECRET-9f8e7d"
	_, simURL := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 5*time.Millisecond, 2*time.Millisecond })
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`
targets:
  - name: web
    url: %s
    model: inferprobe-sim
    api_key_file: key
    headers: {X-Team: platform}
    traffic: {rate: 4, seed: 5} # the ring keeps 50: at 4 req/s, long enough for the browser's round trips
    request: {input_tokens: 8, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 2, min_duration: 0s}
`, simURL))
	d := startDaemon(t, cfg)
	waitFor(t, 20*time.Second, "recent requests", func() bool {
		return d.rec.count("web", func(r recorded) bool { return r.result == "success" }) >= 8
	})
	page := browse(t, chromium, d.base+"/")
	for _, want := range []string{"web: the last 5m0s", "successful", "TTFT p50", "<svg", "<polyline", ">timing</a>", "success</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered landing page lacks %q", want)
		}
	}
	links := regexp.MustCompile(`href="(/request\?target=web&amp;id=\d+)"`).FindAllStringSubmatch(page, -1)
	if len(links) < 5 {
		t.Fatalf("%d request links on the page:\n%s", len(links), page)
	}
	for _, l := range links[:3] {
		href := strings.ReplaceAll(l[1], "&amp;", "&")
		req := browse(t, chromium, d.base+href)
		for _, want := range []string{"Request ", "of web", "Gaps between token chunks", "HTTP phases", "first_byte", "finish reason"} {
			if !strings.Contains(req, want) {
				t.Errorf("%s lacks %q:\n%s", href, want, req)
			}
		}
		if strings.Contains(req, key) {
			t.Errorf("%s shows the API key", href)
		}
	}
	if strings.Contains(page, key) || strings.Contains(get(t, d.base+"/"), key) {
		t.Error("the landing page shows the API key")
	}
	if resp, err := testClient.Get(d.base + "/request?target=web&id=999999"); err != nil || resp.StatusCode != 404 {
		t.Errorf("a request that is not kept: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
