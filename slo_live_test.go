package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/inferprobe/inferprobe/internal/testkit"
	"github.com/inferprobe/inferprobe/simulator"
)

// emptyByDesign is the phrase with which a dashboard panel's description, or the comment above
// a recording rule, says that it can return nothing on a freshly started Prometheus (a baseline
// a day old, say). The live check accepts no data from exactly those, and from nothing else.
const emptyByDesign = "empty by design"

// liveRule is one rule of the shipped rule file, with the comment written above it.
type liveRule struct {
	group, record, alert, expr, comment string
}

// loadLiveRules reads alerts/inferprobe.rules.yml as YAML nodes, so the comments stay.
func loadLiveRules(t *testing.T, path string) []liveRule {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	field := func(n *yaml.Node, key string) *yaml.Node {
		for i := 0; n != nil && i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
		return nil
	}
	var out []liveRule
	groups := field(doc.Content[0], "groups")
	if groups == nil {
		t.Fatalf("%s: no groups", path)
	}
	for _, g := range groups.Content {
		rules := field(g, "rules")
		if rules == nil {
			continue
		}
		for _, r := range rules.Content {
			lr := liveRule{group: field(g, "name").Value, comment: r.HeadComment}
			if n := field(r, "record"); n != nil {
				lr.record = n.Value
				lr.comment += n.HeadComment
			}
			if n := field(r, "alert"); n != nil {
				lr.alert = n.Value
			}
			if n := field(r, "expr"); n != nil {
				lr.expr = n.Value
			}
			out = append(out, lr)
		}
	}
	return out
}

// livePanel is one query of a shipped dashboard.
type livePanel struct {
	file, title, description, refID, expr string
}

func loadLivePanels(t *testing.T) []livePanel {
	t.Helper()
	paths, err := filepath.Glob("dashboards/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	type panel struct {
		Type, Title, Description string
		Targets                  []struct{ Expr, RefID string }
		Panels                   []json.RawMessage
	}
	var out []livePanel
	var walk func(file string, raw []json.RawMessage)
	walk = func(file string, raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			for _, q := range p.Targets {
				out = append(out, livePanel{file, p.Title, p.Description, q.RefID, q.Expr})
			}
			walk(file, p.Panels)
		}
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ Panels []json.RawMessage }
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		walk(filepath.Base(path), d.Panels)
	}
	return out
}

// grafanaVar matches $name, ${name} and ${name:format}.
var grafanaVar = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// expandForLive replaces Grafana's variables with what a user choosing "All" and a short view
// gets: every label value, and windows that a Prometheus scraping every second fills quickly.
func expandForLive(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		switch sub[1] + sub[2] {
		case "__rate_interval":
			return "15s"
		case "__interval":
			return "5s"
		case "__range":
			return "2m"
		default:
			return ".*"
		}
	})
}

// series runs an instant query and returns how many series it gave, or the error.
func (p *promServer) series(t *testing.T, q string) (int, error) {
	t.Helper()
	resp, err := testClient.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, err
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("%s", body.Error)
	}
	return len(body.Data.Result), nil
}

// ruleHealth is a rule as Prometheus's rule manager reports it.
type ruleHealth struct {
	Name, Health, LastError, Type string
	LastEvaluation                time.Time
}

func (p *promServer) rules(t *testing.T) []ruleHealth {
	t.Helper()
	resp, err := testClient.Get("http://" + p.addr + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []ruleHealth
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []ruleHealth
	for _, g := range body.Data.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// readsGPU reports whether an expression reads accelerator series. Besides
// inferprobe_accelerator_up they exist only where NVML found a GPU, so on a machine without one
// such a query may be empty; it still goes through Prometheus's parser and rule manager.
func readsGPU(expr string) bool { return strings.Contains(expr, "inferprobe_accelerator_") }

// TestLiveRulesAndDashboards is the live check of the shipped rules and dashboards: a real
// Prometheus loads alerts/inferprobe.rules.yml and scrapes the daemon probing a simulator with
// faults on; after a few scrapes every recording rule and every dashboard query must return at
// least one series, unless it says it is empty by design, and the rule manager must accept
// every alert (evaluated, healthy). A new panel or rule that returns nothing fails here.
func TestLiveRulesAndDashboards(t *testing.T) {
	bin := testkit.Tool(t, "prometheus", "apt-get install prometheus")
	// Faults on, so error classes, burn rates and the availability SLI have data: 5% 500s,
	// 3% 429s, 2% truncated streams. Fast enough that the hourly p99 gets its 600 samples in
	// well under a minute at 40 requests a second.
	_, simURL := startSim(t, func(c *simulator.Config) {
		c.TTFTBase = 20 * time.Millisecond
		c.TTFTPerPromptToken = 0
		c.ITL = 2 * time.Millisecond
		c.Error500Rate = 0.05
		c.Error429Rate = 0.03
		c.TruncateRate = 0.02
	})
	// Objectives with a fraction of a second, so count_values matches the bucket bounds on
	// Prometheus 2 and 3 alike (docs/dashboards.md).
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {rate: 40}
    request: {input_tokens: 32, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 3, min_duration: 0s}
    slo: {ttft: 500ms, tpot: 50ms, e2e: 1500ms, target_ratio: 0.995}
    metrics: {interval: 1s, engine: vllm}
`, simURL))
	d := startDaemon(t, cfg)
	rulesPath, err := filepath.Abs("alerts/inferprobe.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheusConfig(t, bin, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: inferprobe
    static_configs:
      - targets: [%q]
`, rulesPath, strings.TrimPrefix(d.base, "http://")))

	rules := loadLiveRules(t, rulesPath)
	panels := loadLivePanels(t)
	type check struct {
		what, expr string
		emptyOK    bool
		gpu        bool
	}
	var checks []check
	for _, r := range rules {
		if r.record == "" {
			continue
		}
		checks = append(checks, check{what: "recording rule " + r.record, expr: r.record,
			emptyOK: strings.Contains(strings.ToLower(r.comment), emptyByDesign), gpu: readsGPU(r.expr)})
	}
	for _, p := range panels {
		checks = append(checks, check{what: fmt.Sprintf("%s panel %q query %s", p.file, p.title, p.refID),
			expr: expandForLive(p.expr), emptyOK: strings.Contains(strings.ToLower(p.description), emptyByDesign),
			gpu: readsGPU(p.expr)})
	}

	gpus, _ := prom.series(t, `inferprobe_accelerator_up == 1`)
	empty, noGPU := map[string]string{}, map[string]bool{}
	// Up to a minute and a half of scrapes: the hourly p99 needs 600 samples, the rest seconds.
	deadline := time.Now().Add(90 * time.Second)
	for {
		clear(empty)
		clear(noGPU)
		for _, c := range checks {
			if c.emptyOK {
				continue
			}
			n, err := prom.series(t, c.expr)
			switch {
			case err != nil:
				t.Fatalf("%s: Prometheus refused the query: %v\n%s", c.what, err, c.expr)
			case n == 0 && c.gpu && gpus == 0:
				noGPU[c.what] = true
			case n == 0:
				empty[c.what] = c.expr
			}
		}
		if len(empty) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	names := make([]string, 0, len(empty))
	for w := range empty {
		names = append(names, w)
	}
	sort.Strings(names)
	for _, w := range names {
		t.Errorf("%s returned no series after 90s of scrapes (say %q in its description or comment if that is by design):\n%s", w, emptyByDesign, empty[w])
	}

	// Every rule evaluated at least once, and none in error: the rule manager accepted it.
	want := map[string]bool{}
	for _, r := range rules {
		want[r.record+r.alert] = true
	}
	var seen []string
	for _, r := range prom.rules(t) {
		seen = append(seen, r.Name)
		if r.Health != "ok" || r.LastError != "" || r.LastEvaluation.IsZero() {
			t.Errorf("rule %s (%s): health %q, last error %q, last evaluation %v", r.Name, r.Type, r.Health, r.LastError, r.LastEvaluation)
		}
	}
	for name := range want {
		if !slices.Contains(seen, name) {
			t.Errorf("rule %s of the file is not loaded by Prometheus", name)
		}
	}

	byDesign := 0
	for _, c := range checks {
		if c.emptyOK {
			byDesign++
		}
	}
	t.Logf("%d queries and recording rules checked live: %d empty by design (documented), %d empty for want of a GPU (GPUs found: %d), %d rules healthy",
		len(checks), byDesign, len(noGPU), gpus, len(seen))
}
