package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/internal/metricdocs"
	"github.com/inferprobe/inferprobe/internal/testkit"
)

const (
	metricsMD    = "../docs/metrics.md"
	dashboardsMD = "../docs/dashboards.md"
	// dsUID is how every panel and query names its data source: the dashboard's variable.
	dsUID = "${datasource}"
)

// dashboard is the part of Grafana's dashboard JSON the checks read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row keeps its panels here
	// FieldConfig holds the unit the panel's values are drawn in.
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	Datasource *datasource `json:"datasource"`
	Expr       string      `json:"expr"`
	RefID      string      `json:"refId"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *datasource     `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	IncludeAll bool            `json:"includeAll"`
	Multi      bool            `json:"multi"`
	AllValue   string          `json:"allValue"`
}

// query returns a variable's query: a string for a datasource variable, an object holding
// "query" for a Prometheus query variable.
func (v variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

type file struct {
	name string
	d    dashboard
}

func loadDashboards(t *testing.T) []file {
	t.Helper()
	paths, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no dashboard JSON found")
	}
	var files []file
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		files = append(files, file{p, d})
	}
	return files
}

// walk calls fn for every panel, including those inside collapsed rows.
func walk(ps []panel, fn func(panel)) {
	for _, p := range ps {
		fn(p)
		walk(p.Panels, fn)
	}
}

// queryPanels returns the panels that run queries (every panel but rows).
func queryPanels(d dashboard) []panel {
	var out []panel
	walk(d.Panels, func(p panel) {
		if p.Type != "row" {
			out = append(out, p)
		}
	})
	return out
}

func TestDashboardStructure(t *testing.T) {
	uids := map[string]string{}
	for _, f := range loadDashboards(t) {
		t.Run(f.name, func(t *testing.T) {
			d := f.d
			if d.UID == "" || d.Title == "" {
				t.Errorf("uid %q, title %q: both must be set", d.UID, d.Title)
			}
			if other, dup := uids[d.UID]; dup {
				t.Errorf("uid %q is also used by %s", d.UID, other)
			}
			uids[d.UID] = f.name
			if d.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d: want 36 or later (Grafana 9+ data source references)", d.SchemaVersion)
			}

			var dsVar bool
			for _, v := range d.Templating.List {
				switch v.Type {
				case "datasource":
					dsVar = dsVar || (v.Name == "datasource" && v.query() == "prometheus")
				case "query":
					if v.Datasource == nil || *v.Datasource != (datasource{"prometheus", dsUID}) {
						t.Errorf("variable %s: data source %+v, want the ${datasource} variable", v.Name, v.Datasource)
					}
				}
			}
			if !dsVar {
				t.Error(`no variable "datasource" of type datasource querying prometheus`)
			}

			ids := map[int]string{}
			// occupied marks grid cells (24 columns) to catch overlapping panels.
			occupied := map[[2]int]string{}
			n := 0
			walk(d.Panels, func(p panel) {
				n++
				if p.ID <= 0 {
					t.Errorf("panel %q: id %d", p.Title, p.ID)
				}
				if other, dup := ids[p.ID]; dup {
					t.Errorf("panel id %d used by %q and %q", p.ID, other, p.Title)
				}
				ids[p.ID] = p.Title
				g := p.GridPos
				if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
					t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
				}
				for y := g.Y; y < g.Y+g.H; y++ {
					for x := g.X; x < g.X+g.W; x++ {
						if other, ok := occupied[[2]int{x, y}]; ok {
							t.Errorf("panel %q overlaps %q at column %d, row %d", p.Title, other, x, y)
							return
						}
						occupied[[2]int{x, y}] = p.Title
					}
				}
			})
			if n == 0 {
				t.Fatal("no panels")
			}

			for _, p := range queryPanels(d) {
				if p.Title == "" {
					t.Errorf("panel %d has no title", p.ID)
				}
				if p.Datasource == nil || *p.Datasource != (datasource{"prometheus", dsUID}) {
					t.Errorf("panel %q: data source %+v, want the ${datasource} variable", p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no queries", p.Title)
				}
				refs := map[string]bool{}
				for _, q := range p.Targets {
					if q.Datasource != nil && *q.Datasource != (datasource{"prometheus", dsUID}) {
						t.Errorf("panel %q query %s: data source %+v, want the ${datasource} variable", p.Title, q.RefID, q.Datasource)
					}
					if q.RefID == "" || refs[q.RefID] {
						t.Errorf("panel %q: refId %q empty or repeated", p.Title, q.RefID)
					}
					refs[q.RefID] = true
					if strings.TrimSpace(q.Expr) == "" {
						t.Errorf("panel %q query %s: empty expr", p.Title, q.RefID)
					}
				}
			}
		})
	}
}

var (
	// variableRef matches $name and ${name} or ${name:format}. A name starts with a letter or
	// an underscore: $1 is label_replace's first capture group, which Grafana passes through
	// (it leaves names it does not define alone).
	variableRef = regexp.MustCompile(`\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))`)
	// builtins are Grafana's global variables, with a value that keeps PromQL valid.
	builtins = map[string]string{
		"__rate_interval": "5m",
		"__interval":      "1m",
		"__range":         "3h",
	}
	// labelValues matches a Prometheus variable query label_values(selector, label).
	labelValues = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	identifier  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// noise is what in PromQL can hold a name-like word that is not a metric: string literals
	// and comments.
	noise = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`|#[^\n]*")
)

// expand replaces Grafana variables with values that keep the expression valid PromQL: a
// builtin's duration, or a plain word for a user variable (they are only used inside label
// matcher strings). Unknown variables are reported.
func expand(expr string, defined map[string]bool) (string, []string) {
	var unknown []string
	out := variableRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variableRef.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := builtins[name]; ok {
			return v
		}
		if !defined[name] {
			unknown = append(unknown, name)
		}
		return "x"
	})
	return out, unknown
}

// metricNames returns the metric names (no recording-rule names) an expression uses.
func metricNames(expr string) []string {
	var out []string
	for _, w := range identifier.FindAllString(noise.ReplaceAllString(expr, " "), -1) {
		if strings.HasPrefix(w, "inferprobe_") && !strings.Contains(w, ":") {
			out = append(out, w)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`rate(inferprobe_requests_total{target=~"$target", result!="inferprobe_x"}[$__rate_interval])`, []string{"inferprobe_requests_total"}},
		{`a:inferprobe_b:c / inferprobe_server_up`, []string{"inferprobe_server_up"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// query is one PromQL expression of a dashboard, named for error messages.
type query struct {
	where string
	expr  string // with Grafana variables replaced
	raw   string
}

// queries returns every PromQL expression of a dashboard: panel targets and the selectors of
// label_values variables. Undefined variables are errors.
func queries(t *testing.T, f file) []query {
	t.Helper()
	defined := map[string]bool{}
	for _, v := range f.d.Templating.List {
		defined[v.Name] = true
	}
	var out []query
	add := func(where, raw string) {
		expr, unknown := expand(raw, defined)
		for _, u := range unknown {
			t.Errorf("%s: %s uses variable $%s, which the dashboard does not define", f.name, where, u)
		}
		out = append(out, query{where, expr, raw})
	}
	for _, v := range f.d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.query())
		if m == nil {
			t.Errorf("%s: variable %s: query %q, want label_values(selector, label)", f.name, v.Name, v.query())
			continue
		}
		add("variable "+v.Name, m[1])
	}
	for _, p := range queryPanels(f.d) {
		for _, q := range p.Targets {
			add(fmt.Sprintf("panel %d %q query %s", p.ID, p.Title, q.RefID), q.Expr)
		}
	}
	return out
}

func loadDocs(t *testing.T) map[string]metricdocs.Metric {
	t.Helper()
	docs, err := metricdocs.ParseFile(metricsMD)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestMetricsDocumented holds every inferprobe_* name the dashboards use, and every label a
// variable lists values of, to docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	docs := loadDocs(t)
	for _, f := range loadDashboards(t) {
		n := 0
		for _, q := range queries(t, f) {
			for _, name := range metricNames(q.expr) {
				n++
				if _, ok := family(docs, name); !ok {
					t.Errorf("%s: %s uses %s, which docs/metrics.md does not document", f.name, q.where, name)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no inferprobe_* metric in any query", f.name)
		}
		for _, v := range f.d.Templating.List {
			m := labelValues.FindStringSubmatch(v.query())
			if v.Type != "query" || m == nil {
				continue
			}
			names := metricNames(m[1])
			if len(names) != 1 {
				t.Errorf("%s: variable %s: want one metric in %q", f.name, v.Name, m[1])
				continue
			}
			doc, ok := family(docs, names[0])
			label := m[2]
			if ok && label != "instance" && label != "job" && !slices.Contains(doc.Labels, label) && !slices.Contains(doc.Optional, label) {
				t.Errorf("%s: variable %s lists label %s, which %s does not have", f.name, v.Name, label, names[0])
			}
		}
	}
}

// family resolves a series name to its documented family: the name itself, or a histogram's
// _bucket, _sum or _count series.
func family(docs map[string]metricdocs.Metric, name string) (metricdocs.Metric, bool) {
	if m, ok := docs[name]; ok {
		return m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, cut := strings.CutSuffix(name, suffix)
		if m, ok := docs[base]; cut && ok && m.Type == "histogram" {
			return m, true
		}
	}
	return metricdocs.Metric{}, false
}

// promtool finds promtool (Debian's prometheus package; .ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	return testkit.Tool(t, "promtool", "apt-get install prometheus")
}

// TestQueriesParse has promtool parse every query: they are written as recording rules of a
// temporary rule file, and `promtool check rules` parses each expression with Prometheus's own
// parser. The rule names say which panel a failure comes from.
func TestQueriesParse(t *testing.T) {
	bin := promtool(t)
	for _, f := range loadDashboards(t) {
		t.Run(f.name, func(t *testing.T) {
			qs := queries(t, f)
			var b strings.Builder
			b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
			nonWord := regexp.MustCompile(`\W+`)
			for i, q := range qs {
				name := fmt.Sprintf("q%d_%s", i, strings.Trim(nonWord.ReplaceAllString(q.where, "_"), "_"))
				expr, err := json.Marshal(q.expr) // a JSON string is a valid YAML scalar
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "      - record: %s\n        expr: %s\n", name, expr)
			}
			path := filepath.Join(t.TempDir(), "queries.yml")
			if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "check", "rules", path).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool check rules: %v\n%s", err, out)
			}
			if want := fmt.Sprintf("%d rules found", len(qs)); !strings.Contains(string(out), want) {
				t.Fatalf("promtool check rules: want %q in its output:\n%s", want, out)
			}
		})
	}
}

// TestDocsDescribePanels requires docs/dashboards.md to name every panel and show every query
// exactly as the dashboard runs it.
func TestDocsDescribePanels(t *testing.T) {
	b, err := os.ReadFile(dashboardsMD)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, f := range loadDashboards(t) {
		if !strings.Contains(doc, f.name) {
			t.Errorf("%s does not mention %s", dashboardsMD, f.name)
		}
		for _, p := range queryPanels(f.d) {
			if !strings.Contains(doc, "**"+p.Title+"**") {
				t.Errorf("%s: panel %q is not described in %s", f.name, p.Title, dashboardsMD)
			}
			for _, q := range p.Targets {
				if !strings.Contains(doc, "```promql\n"+q.Expr+"\n```") {
					t.Errorf("%s: panel %q query %s is not in %s as a promql block:\n%s", f.name, p.Title, q.RefID, dashboardsMD, q.Expr)
				}
			}
		}
	}
}

// unitless are the panel types that draw states or labels rather than quantities.
var unitless = map[string]bool{"row": true, "text": true, "state-timeline": true, "table": true}

// A panel that draws quantities says in what unit; every query variable offers All (as .*,
// since panels match it with =~ and a target that appeared after the variable loaded still
// matches) and several values, and some query uses it. The SLO dashboard filters by target,
// model and adapter, each chained to the ones before it.
func TestDashboardUnitsAndVariables(t *testing.T) {
	for _, f := range loadDashboards(t) {
		t.Run(f.name, func(t *testing.T) {
			var exprs []string
			walk(f.d.Panels, func(p panel) {
				if !unitless[p.Type] && p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("panel %q (%s) has no unit", p.Title, p.Type)
				}
				for _, q := range p.Targets {
					exprs = append(exprs, q.Expr)
				}
			})
			used := map[string]bool{}
			for _, e := range exprs {
				for _, m := range variableRef.FindAllStringSubmatch(e, -1) {
					used[m[1]+m[2]] = true
				}
			}
			vars := map[string]variable{}
			var order []string
			for _, v := range f.d.Templating.List {
				vars[v.Name] = v
				order = append(order, v.Name)
				if v.Type != "query" {
					continue
				}
				if !v.IncludeAll || !v.Multi || v.AllValue != ".*" {
					t.Errorf("variable %s: includeAll %v, multi %v, allValue %q; want true, true, \".*\"", v.Name, v.IncludeAll, v.Multi, v.AllValue)
				}
				if !used[v.Name] {
					t.Errorf("variable %s: no panel query uses it", v.Name)
				}
			}
			if f.name != "inferprobe-slo.json" {
				return
			}
			chain := []string{"target", "model", "adapter"}
			for i, name := range chain {
				v, ok := vars[name]
				if !ok || v.Type != "query" {
					t.Errorf("no query variable %s", name)
					continue
				}
				if !slices.Contains(order, name) || (i > 0 && slices.Index(order, chain[i-1]) > slices.Index(order, name)) {
					t.Errorf("variable %s comes before %s", name, chain[i-1])
				}
				for _, before := range chain[:i] {
					if !strings.Contains(v.query(), "$"+before) {
						t.Errorf("variable %s: query %q does not follow $%s", name, v.query(), before)
					}
				}
			}
		})
	}
}
