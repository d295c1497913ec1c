package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
// that request's timing record; an API key planted in the configuration appears on no page,
// not even on the page of a request whose server echoed it back in its error body.
//
// Each target replays a short trace once (loop: false), so its traffic has ended before the
// first page is fetched: every request it sent is still in the ring of 50, and a link on the
// landing page cannot leave the ring while a cold browser takes its time.
func TestLandingPageInABrowser(t *testing.T) {
	chromium := testkit.Tool(t, "chromium", "apt-get install chromium")
	const key, gatewayKey = "sk-landing-SECRET-9f8e7d", "gw-landing-SECRET-4c3b2a"
	const webRequests, deniedRequests = 12, 3
	_, simURL := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 5*time.Millisecond, 2*time.Millisecond })
	// A gateway that refuses the key and, as some error pages do, echoes the credentials sent.
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"error": "invalid key (Authorization: %s, X-Api-Key: %s)"}`,
			r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
	}))
	t.Cleanup(denied.Close)
	dir := t.TempDir()
	trace := func(name string, rows int) {
		var b strings.Builder
		for i := range rows {
			fmt.Fprintf(&b, `{"timestamp": %d, "input_length": 8, "output_length": 8}`+"\n", i*100)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	trace("web.jsonl", webRequests)
	trace("denied.jsonl", deniedRequests)
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
    traffic: {pacer: trace, trace: {file: web.jsonl, loop: false}}
    warmup: {requests: 2, min_duration: 0s}
  - name: denied
    url: %s
    model: m
    api_key_file: key
    headers: {X-Api-Key: %s}
    traffic: {pacer: trace, trace: {file: denied.jsonl, loop: false}}
    warmup: {requests: 1, min_duration: 0s}
`, simURL, denied.URL, gatewayKey))
	d := startDaemon(t, cfg)
	all := func(recorded) bool { return true }
	waitFor(t, 30*time.Second, "every traced request finished", func() bool {
		return d.rec.count("web", all) == webRequests && d.rec.count("denied", all) == deniedRequests
	})
	if n := d.rec.count("web", func(r recorded) bool { return r.result == "success" }); n != webRequests {
		t.Fatalf("%d of web's %d requests succeeded", n, webRequests)
	}
	page := browse(t, chromium, d.base+"/")
	for _, want := range []string{"web: the last 5m0s", "denied: the last 5m0s", "100.0% successful", "0.0% successful",
		"<svg", "<polyline", ">timing</a>", "success</td>", "http_4xx</td><td>401</td>",
		"<th>sent</th><th>result</th><th>status</th><th>TTFT</th><th>tokens</th>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the rendered landing page lacks %q", want)
		}
	}
	// web's figures: 12 requests, every percentile a number, measuring; denied has no latency.
	figures := regexp.MustCompile(fmt.Sprintf(`%d requests, 100\.0%% successful · TTFT p50 \d+\.\d ms / p99 \d+\.\d ms · `+
		`ITL p50 \d+\.\d ms / p99 \d+\.\d ms · TPOT p50 \d+\.\d ms / p99 \d+\.\d ms · measuring`, webRequests))
	if !figures.MatchString(strings.Join(strings.Fields(page), " ")) {
		t.Errorf("web's recent figures are not all there:\n%s", page)
	}
	links := func(target string) []string {
		var hrefs []string
		for _, m := range regexp.MustCompile(`href="(/request\?target=`+target+`&amp;id=\d+)"`).FindAllStringSubmatch(page, -1) {
			hrefs = append(hrefs, strings.ReplaceAll(m[1], "&amp;", "&"))
		}
		return hrefs
	}
	web, refused := links("web"), links("denied")
	if len(web) != webRequests || len(refused) != deniedRequests {
		t.Fatalf("%d request links of web and %d of denied on the page, want %d and %d:\n%s",
			len(web), len(refused), webRequests, deniedRequests, page)
	}
	check := func(href, body string, wants ...string) {
		t.Helper()
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("%s lacks %q:\n%s", href, want, body)
			}
		}
		for _, secret := range []string{key, gatewayKey} {
			if strings.Contains(body, secret) {
				t.Errorf("%s shows a credential", href)
			}
		}
	}
	webWants := []string{"Request ", "of web", "Gaps between token chunks", "HTTP phases", "first_byte", "finish reason"}
	// Every link resolves; the browser renders two of each target's (a cold Chromium is slow).
	for i, href := range web {
		if i < 2 {
			check(href, browse(t, chromium, d.base+href), webWants...)
		}
		check(href, get(t, d.base+href), webWants...)
	}
	for i, href := range refused {
		wants := []string{"of denied", "http_4xx", "<th>error</th>", "HTTP 401", "invalid key",
			"Bearer &lt;secret&gt;", "X-Api-Key: &lt;secret&gt;"}
		if i < 1 {
			check(href, browse(t, chromium, d.base+href), wants...)
		}
		check(href, get(t, d.base+href), wants...)
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
