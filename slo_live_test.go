package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/inferprobe/inferprobe/collector/accelerator"
	"github.com/inferprobe/inferprobe/collector/accelerator/acceltest"
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

// grafanaVar matches $name, ${name} and ${name:format}; not $1, label_replace's capture group,
// which Grafana passes through.
var grafanaVar = regexp.MustCompile(`\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))`)

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

// series runs an instant query and returns the label sets of the series it gave, or the error.
func (p *promServer) series(t *testing.T, q string) ([]map[string]string, error) {
	t.Helper()
	resp, err := testClient.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s", body.Error)
	}
	out := make([]map[string]string, len(body.Data.Result))
	for i, r := range body.Data.Result {
		out[i] = r.Metric
	}
	return out, nil
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

// labelVariant is one literal label value a label_replace writes, e.g. quantile="0.99".
type labelVariant struct{ label, value string }

// literalLabel matches the tail of a label_replace that writes a fixed value into a label from
// no source label: label_replace(v, "quantile", "0.99", "", "").
var literalLabel = regexp.MustCompile(`"(\w+)",\s*"([^"$]+)",\s*"",\s*""\s*\)`)

// variants returns the label values an expression writes with label_replace: each branch of
// an "or" of them. Where the label reaches the result (no aggregation drops it), one series
// must carry each value: every branch has data.
func variants(expr string) []labelVariant {
	var out []labelVariant
	for _, m := range literalLabel.FindAllStringSubmatch(expr, -1) {
		out = append(out, labelVariant{m[1], m[2]})
	}
	return out
}

// recordName matches a recording rule's name (level:metric:operations) in an expression.
var recordName = regexp.MustCompile(`[a-z_]+:[a-z_0-9]+:[a-z_0-9]+`)

// prometheus3 returns the Prometheus 3 binary deploy/tools/install.sh builds (or the one
// $INFERPROBE_PROMETHEUS3 names), or "" with the reason it is missing.
func prometheus3(t *testing.T) (string, string) {
	t.Helper()
	p := os.Getenv("INFERPROBE_PROMETHEUS3")
	if p == "" {
		version := ""
		b, err := os.ReadFile(filepath.Join("deploy", "tools", "versions"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PROMETHEUS_VERSION="); ok {
				version = v
			}
		}
		dir := os.Getenv("INFERPROBE_TOOLS")
		if dir == "" {
			out, err := exec.Command("go", "env", "GOPATH").Output()
			if err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(strings.TrimSpace(string(out)), "inferprobe-tools")
		}
		p = filepath.Join(dir, "prometheus-"+version, "prometheus")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Sprintf("no Prometheus 3 at %s (deploy/tools/install.sh builds it; INFERPROBE_PROMETHEUS3 names another)", p)
	}
	return p, ""
}

// promMajor returns the major version a prometheus binary reports ("2", "3").
func promMajor(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	m := regexp.MustCompile(`prometheus, version (\d+)\.`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s --version: no version in %q", bin, out)
	}
	return string(m[1])
}

// TestLiveRulesAndDashboards is the live check of the shipped rules and dashboards: a real
// Prometheus loads alerts/inferprobe.rules.yml and scrapes the daemon probing a simulator with
// faults on, with a fake GPU (acceltest) under its accelerator collector; after a few scrapes
// every recording rule and every dashboard query must return at least one series (and each
// label variant its label_replace branches write), unless it says it is empty by design, and
// the rule manager must accept every alert (evaluated, healthy). A new panel or rule that
// returns nothing fails here. It runs on Debian's Prometheus 2 and on a current Prometheus 3
// (deploy/tools/install.sh builds it), which write bucket bounds differently.
func TestLiveRulesAndDashboards(t *testing.T) {
	prom2 := testkit.Tool(t, "prometheus", "apt-get install prometheus")
	t.Run("prometheus2", func(t *testing.T) {
		if v := promMajor(t, prom2); v != "2" {
			t.Skipf("%s is Prometheus %s; the prometheus3 case covers it", prom2, v)
		}
		liveCheck(t, prom2)
	})
	t.Run("prometheus3", func(t *testing.T) {
		bin, missing := prometheus3(t)
		if bin == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s; .ci/run installs it, and this check never skips in CI", missing)
			}
			t.Skip(missing)
		}
		if v := promMajor(t, bin); v != "3" {
			t.Fatalf("%s is Prometheus %s, want 3", bin, v)
		}
		liveCheck(t, bin)
	})
}

func liveCheck(t *testing.T, bin string) {
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
	// Whole-second objectives (ttft 1s, e2e 2s): Prometheus 3 writes their bucket bounds as
	// "1.0" and "2.0", Prometheus 2 as "1" and "2", and the per-SLI panel must match both.
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
targets:
  - name: sim
    url: %s
    model: inferprobe-sim
    traffic: {rate: 40}
    request: {input_tokens: 32, max_tokens: 8, ignore_eos: true}
    warmup: {requests: 3, min_duration: 0s}
    slo: {ttft: 1s, tpot: 50ms, e2e: 2s, target_ratio: 0.995}
    metrics: {interval: 1s, engine: vllm}
`, simURL))
	d := startDaemonWith(t, cfg, "", false, func(o *daemonOptions) {
		acc := accelerator.Options{Enabled: true, Interval: time.Second}
		o.accelerator = &acc
		o.nvml = acceltest.New()
	})
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
	// emptyRecords are the recording rules whose comment says they may be empty; variantsOf
	// the label values each record's label_replace branches write.
	emptyRecords, variantsOf := map[string]bool{}, map[string][]labelVariant{}
	for _, r := range rules {
		if r.record == "" {
			continue
		}
		emptyRecords[r.record] = strings.Contains(strings.ToLower(r.comment), emptyByDesign)
		variantsOf[r.record] = variants(r.expr)
	}
	type check struct {
		what, expr string
		emptyOK    bool
		want       []labelVariant
	}
	var checks []check
	for _, r := range rules {
		if r.record == "" {
			continue
		}
		checks = append(checks, check{what: "recording rule " + r.record, expr: r.record,
			emptyOK: emptyRecords[r.record], want: variantsOf[r.record]})
	}
	for _, p := range panels {
		// A panel that says it is empty by design excuses only its queries that read a record
		// empty by design; its other queries (the factor line beside the ratios) must have data.
		c := check{what: fmt.Sprintf("%s panel %q query %s", p.file, p.title, p.refID), expr: expandForLive(p.expr),
			want: variants(p.expr)}
		says := strings.Contains(strings.ToLower(p.description), emptyByDesign)
		for _, name := range recordName.FindAllString(p.expr, -1) {
			c.emptyOK = c.emptyOK || (says && emptyRecords[name])
			c.want = append(c.want, variantsOf[name]...)
		}
		checks = append(checks, c)
	}

	empty := map[string]string{}
	// Up to a minute and a half of scrapes: the hourly p99 needs 600 samples, the rest seconds.
	deadline := time.Now().Add(90 * time.Second)
	for {
		clear(empty)
		for _, c := range checks {
			if c.emptyOK {
				continue
			}
			got, err := prom.series(t, c.expr)
			if err != nil {
				t.Fatalf("%s: Prometheus refused the query: %v\n%s", c.what, err, c.expr)
			}
			if len(got) == 0 {
				empty[c.what] = c.expr
				continue
			}
		variant:
			for _, v := range c.want {
				kept := false
				for _, s := range got {
					if s[v.label] == v.value {
						continue variant
					}
					_, has := s[v.label]
					kept = kept || has
				}
				if kept {
					empty[c.what] = fmt.Sprintf("(no series with %s=%q)\n%s", v.label, v.value, c.expr)
					break
				}
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
	if gpus, err := prom.series(t, `inferprobe_accelerator_up == 1`); err != nil || len(gpus) != 1 {
		t.Errorf("inferprobe_accelerator_up == 1: %d series, %v; the fake GPU should be up", len(gpus), err)
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

	byDesign, variantsChecked := 0, 0
	for _, c := range checks {
		if c.emptyOK {
			byDesign++
		} else {
			variantsChecked += len(c.want)
		}
	}
	t.Logf("Prometheus %s: %d queries and recording rules checked live (%d label variants among them): %d empty by design (documented), %d rules healthy",
		promMajor(t, bin), len(checks), variantsChecked, byDesign, len(seen))
}
