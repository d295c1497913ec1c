package alerts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/inferprobe/inferprobe/internal/metricdocs"
	"github.com/inferprobe/inferprobe/internal/testkit"
)

const (
	rulesFile = "inferprobe.rules.yml"
	metricsMD = "../docs/metrics.md"
)

// testsFiles are the promtool unit tests of rulesFile: the general ones, the SLO burn rates
// (days of input at a 5-minute evaluation interval) and the regressions (a week and more at 10
// minutes). They are apart because promtool sets the evaluation interval per file.
var testsFiles = []string{"inferprobe.rules.test.yml", "slo.rules.test.yml", "regression.rules.test.yml"}

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// testFile is the part of a promtool unit-test file the checks read.
type testFile struct {
	path      string      // which of testsFiles, for messages
	RuleFiles []string    `yaml:"rule_files"`
	Tests     []testGroup `yaml:"tests"`
}

// testGroup is one test group of a promtool test file.
type testGroup = struct {
	Name        string                    `yaml:"name"`
	InputSeries []struct{ Series string } `yaml:"input_series"`
	AlertTests  []alertTest               `yaml:"alert_rule_test"`
	PromQLTests []struct{ Expr string }   `yaml:"promql_expr_test"`
}

// allGroups returns the test groups of every file, in order.
func allGroups(files []testFile) []testGroup {
	var out []testGroup
	for _, f := range files {
		out = append(out, f.Tests...)
	}
	return out
}

type alertTest struct {
	EvalTime  string           `yaml:"eval_time"`
	Alertname string           `yaml:"alertname"`
	ExpAlerts []map[string]any `yaml:"exp_alerts"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// loadTests reads every file of testsFiles, each of which must load rulesFile.
func loadTests(t *testing.T) []testFile {
	t.Helper()
	var out []testFile
	for _, f := range testsFiles {
		var tf testFile
		readYAML(t, f, &tf)
		if !slices.Contains(tf.RuleFiles, rulesFile) {
			t.Fatalf("%s does not load %s", f, rulesFile)
		}
		tf.path = f
		out = append(out, tf)
	}
	return out
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	readYAML(t, rulesFile, &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", rulesFile)
	}
	return rules
}

func loadDocs(t *testing.T) map[string]metricdocs.Metric {
	t.Helper()
	docs, err := metricdocs.ParseFile(metricsMD)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// promtool finds promtool (Debian's prometheus package; .ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	return testkit.Tool(t, "promtool", "apt-get install prometheus")
}

func TestPromtool(t *testing.T) {
	bin := promtool(t)
	cases := []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", rulesFile}},
	}
	for _, f := range testsFiles {
		cases = append(cases, struct {
			name string
			args []string
		}{"test rules " + f, []string{"test", "rules", f}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The SLO tests evaluate days of input: allow for a slow, shared CI machine.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, tc.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}

var (
	// identifier matches a metric name (with colons, so a recording rule name is one token).
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// noise is what in PromQL can hold a name-like word that is not a metric: string literals
	// (label values, regexes), comments, and range and subquery brackets ([7d:1h]).
	noise = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`|#[^\n]*|\\[[^\\]]*\\]")
	// recordName is level:metric:operations, the metric part one of inferprobe's.
	recordName = regexp.MustCompile(`^[a-z]+(?:_[a-z]+)*:inferprobe_[a-z0-9_]+:[a-z0-9_]+$`)
	// seriesLabel matches one label="value" pair of a promtool series selector.
	seriesLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// names returns the metric names (no colon) and recording rule names (with one) an
// expression uses.
func names(expr string) (metrics, records []string) {
	for _, w := range identifier.FindAllString(noise.ReplaceAllString(expr, " "), -1) {
		switch {
		case strings.Contains(w, ":"):
			records = append(records, w)
		case strings.HasPrefix(w, "inferprobe_"):
			metrics = append(metrics, w)
		}
	}
	return metrics, records
}

// documented resolves a series name to its documented family: the name itself, or a
// histogram's _bucket, _sum or _count series.
func documented(docs map[string]metricdocs.Metric, name string) (family string, m metricdocs.Metric, ok bool) {
	if m, ok := docs[name]; ok {
		return name, m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, cut := strings.CutSuffix(name, suffix)
		if m, ok := docs[base]; cut && ok && m.Type == "histogram" {
			return base, m, true
		}
	}
	return "", metricdocs.Metric{}, false
}

func TestNamesParsing(t *testing.T) {
	for _, tc := range []struct {
		expr             string
		metrics, records []string
	}{
		{
			expr:    `histogram_quantile(0.99, sum by (target, le) (rate(inferprobe_time_to_first_token_seconds_bucket[5m])))`,
			metrics: []string{"inferprobe_time_to_first_token_seconds_bucket"},
		},
		{
			expr:    "quantile_over_time(0.5, a:inferprobe_b:c[7d:1h])",
			records: []string{"a:inferprobe_b:c"},
		},
		{
			expr:    "target:inferprobe_goodput:ratio_rate5m < 0.95  # threshold: inferprobe_not_a_metric",
			records: []string{"target:inferprobe_goodput:ratio_rate5m"},
		},
		{
			expr:    `inferprobe_server_up{target="inferprobe_label_value"} == 0 and on (target) x:inferprobe_y:z`,
			metrics: []string{"inferprobe_server_up"},
			records: []string{"x:inferprobe_y:z"},
		},
	} {
		metrics, records := names(tc.expr)
		if !slices.Equal(metrics, tc.metrics) || !slices.Equal(records, tc.records) {
			t.Errorf("names(%q) = %q, %q; want %q, %q", tc.expr, metrics, records, tc.metrics, tc.records)
		}
	}
}

// TestRulesUseDocumentedMetrics holds every inferprobe_* name in the rules to docs/metrics.md, and
// every recording rule a rule reads to one defined before it.
func TestRulesUseDocumentedMetrics(t *testing.T) {
	docs := loadDocs(t)
	defined := map[string]bool{}
	used := 0
	for _, r := range loadRules(t) {
		metrics, records := names(r.Expr)
		for _, m := range metrics {
			used++
			if _, _, ok := documented(docs, m); !ok {
				t.Errorf("%s%s uses %s, which docs/metrics.md does not document", r.Record, r.Alert, m)
			}
		}
		for _, rec := range records {
			if !defined[rec] {
				t.Errorf("%s%s reads %s, which no earlier recording rule defines", r.Record, r.Alert, rec)
			}
		}
		if r.Record != "" {
			defined[r.Record] = true
		}
	}
	if used == 0 {
		t.Fatal("no inferprobe_* metric found in the rules")
	}
}

// TestRuleConventions checks names, labels and annotations that routing and on-call rely on.
func TestRuleConventions(t *testing.T) {
	seen := map[string]bool{}
	severities := []string{"critical", "warning", "info"}
	for _, r := range loadRules(t) {
		name := r.Record + r.Alert
		if (r.Record == "") == (r.Alert == "") {
			t.Errorf("rule %q: exactly one of record and alert must be set", name)
			continue
		}
		if seen[name] {
			t.Errorf("%s is defined twice", name)
		}
		seen[name] = true
		if r.Record != "" {
			if !recordName.MatchString(r.Record) {
				t.Errorf("recording rule %s: want level:inferprobe_metric:operations", r.Record)
			}
			continue
		}
		if !strings.HasPrefix(r.Alert, "Inferprobe") {
			t.Errorf("alert %s: name must start with Inferprobe", r.Alert)
		}
		if !slices.Contains(severities, r.Labels["severity"]) {
			t.Errorf("alert %s: severity %q, want one of %v", r.Alert, r.Labels["severity"], severities)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("alert %s: no %s annotation", r.Alert, a)
			}
		}
		// absent() fires on a missing series, which is rarely what a rule means; none of these
		// rules needs it.
		if strings.Contains(r.Expr, "absent") {
			t.Errorf("alert %s uses absent(); use it only deliberately and document why", r.Alert)
		}
	}
}

// TestEveryRuleTested requires, for every alert, a unit test where it fires and one where it
// does not, and a promql_expr_test reading every recording rule.
func TestEveryRuleTested(t *testing.T) {
	firing, quiet, exprs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, g := range allGroups(loadTests(t)) {
		for _, at := range g.AlertTests {
			if len(at.ExpAlerts) > 0 {
				firing[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
		for _, pt := range g.PromQLTests {
			_, records := names(pt.Expr)
			for _, r := range records {
				exprs[r] = true
			}
		}
	}
	alerts := map[string]bool{}
	for _, r := range loadRules(t) {
		switch {
		case r.Alert != "":
			alerts[r.Alert] = true
			if !firing[r.Alert] {
				t.Errorf("alert %s: no test case where it fires", r.Alert)
			}
			if !quiet[r.Alert] {
				t.Errorf("alert %s: no test case where it stays quiet", r.Alert)
			}
		case !exprs[r.Record]:
			t.Errorf("recording rule %s: no promql_expr_test reads it", r.Record)
		}
	}
	for name := range firing {
		if !alerts[name] {
			t.Errorf("%v test alert %s, which the rules do not define", testsFiles, name)
		}
	}
}

// TestInputSeriesDocumented holds the unit tests' input series to the documented names and
// labels, so the tests feed the rules what inferprobe really exposes.
func TestInputSeriesDocumented(t *testing.T) {
	docs := loadDocs(t)
	n := 0
	for _, g := range allGroups(loadTests(t)) {
		for _, in := range g.InputSeries {
			n++
			name, rest, _ := strings.Cut(in.Series, "{")
			family, m, ok := documented(docs, name)
			if !ok {
				t.Errorf("test %q: series %s is not documented in docs/metrics.md", g.Name, name)
				continue
			}
			var labels []string
			for _, kv := range seriesLabel.FindAllStringSubmatch(rest, -1) {
				switch {
				case kv[1] == "job" || kv[1] == "instance":
					// Added by the Prometheus scrape, not by inferprobe.
				case kv[1] == "le" && family != name:
				default:
					labels = append(labels, kv[1])
				}
			}
			if !m.Allows(labels) {
				t.Errorf("test %q: %s has labels %v, docs/metrics.md documents %v (optional %v)",
					g.Name, name, labels, m.Labels, m.Optional)
			}
		}
	}
	if n == 0 {
		t.Fatalf("%v have no input series", testsFiles)
	}
}

const runbookMD = "../docs/runbook.md"

// runbookSections splits docs/runbook.md into its "## " sections, by heading.
func runbookSections(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(runbookMD)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, part := range strings.Split("\n"+string(b), "\n## ")[1:] {
		heading, body, _ := strings.Cut(part, "\n")
		out[strings.TrimSpace(heading)] = body
	}
	return out
}

var (
	promqlBlock = regexp.MustCompile("(?s)```promql\n(.*?)\n```")
	placeholder = regexp.MustCompile(`<[a-z]+>`)
	runbookLink = regexp.MustCompile(`docs/runbook\.md#([a-z0-9-]+)`)
)

// TestRunbookCoversEveryAlert requires a runbook section per alert, none for an alert that does
// not exist, three first queries in each that use documented names and parse (promtool), the
// silence to set during a deploy, and a section behind every runbook link in an annotation.
func TestRunbookCoversEveryAlert(t *testing.T) {
	sections := runbookSections(t)
	docs := loadDocs(t)
	alerts := map[string]bool{}
	var queries []string
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = true
		body, ok := sections[r.Alert]
		if !ok {
			t.Errorf("%s: no section ## %s", runbookMD, r.Alert)
			continue
		}
		qs := promqlBlock.FindAllStringSubmatch(body, -1)
		if len(qs) < 3 {
			t.Errorf("%s section %s: %d promql queries, want the first three to run", runbookMD, r.Alert, len(qs))
		}
		for _, q := range qs {
			queries = append(queries, q[1])
			metrics, _ := names(q[1])
			for _, m := range metrics {
				if _, _, ok := documented(docs, m); !ok {
					t.Errorf("%s section %s uses %s, which docs/metrics.md does not document", runbookMD, r.Alert, m)
				}
			}
		}
		for _, want := range []string{"**What it means.**", "**Usual causes.**", "**Silence during a deploy.**", "alertname=" + r.Alert} {
			if !strings.Contains(body, want) {
				t.Errorf("%s section %s lacks %q", runbookMD, r.Alert, want)
			}
		}
		for _, a := range r.Annotations {
			for _, m := range runbookLink.FindAllStringSubmatch(a, -1) {
				if !strings.EqualFold(m[1], r.Alert) {
					t.Errorf("alert %s links to %s, not to its own section", r.Alert, m[0])
				}
			}
		}
	}
	for heading := range sections {
		if strings.HasPrefix(heading, "Inferprobe") && !alerts[heading] {
			t.Errorf("%s has a section for %s, which the rules do not define", runbookMD, heading)
		}
	}

	// Parse every query with Prometheus's own parser, placeholders filled in.
	bin := promtool(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: runbook\n    rules:\n")
	for i, q := range queries {
		fmt.Fprintf(&b, "      - record: runbook_query_%d\n        expr: %s\n", i, strconv.Quote(placeholder.ReplaceAllString(q, "x")))
	}
	path := filepath.Join(t.TempDir(), "runbook.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the runbook's queries: %v\n%s", err, out)
	}
}
