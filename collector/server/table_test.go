package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTableIsConsistent checks the normalisation table's data: known engines only, sources that
// fit their row's type, and every engine reachable.
func TestTableIsConsistent(t *testing.T) {
	known := map[string]bool{}
	for _, e := range engines {
		if known[e.name] {
			t.Errorf("engine %q listed twice", e.name)
		}
		known[e.name] = true
		if e.prefix == "" {
			t.Errorf("engine %q has no detection prefix", e.name)
		}
	}
	used := map[string]bool{}
	for _, r := range table {
		if !strings.HasPrefix(r.name, "inferprobe_server_") || r.help == "" {
			t.Errorf("row %q: bad name or no help", r.name)
		}
		for engine, sources := range r.from {
			if !known[engine] {
				t.Errorf("row %q: unknown engine %q", r.name, engine)
			}
			used[engine] = true
			if len(sources) == 0 {
				t.Errorf("row %q, engine %q: empty cell", r.name, engine)
			}
			for _, src := range sources {
				if src.family == "" {
					t.Errorf("row %q, engine %q: source without a family", r.name, engine)
				}
				if (r.kind == kindHistogram) != (src.part == partHistogram) {
					t.Errorf("row %q, engine %q: %s read as part %d of a %d row", r.name, engine, src.family, src.part, r.kind)
				}
				if src.per != nil && (r.kind != kindGauge || src.per.part != partValue) {
					t.Errorf("row %q, engine %q: a ratio must be a gauge of values", r.name, engine)
				}
				if src.label != "" && src.value == "" {
					t.Errorf("row %q, engine %q: selector %q without a value", r.name, engine, src.label)
				}
			}
		}
	}
	for name := range known {
		if !used[name] {
			t.Errorf("engine %q has no row", name)
		}
	}
}

// TestDocsCoverTable keeps docs/server-metrics.md in step with the table: every series, engine
// and source family it maps must appear there.
func TestDocsCoverTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "server-metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	want := []string{MetricUp, MetricScrapeDuration, MetricScrapeErrors, MetricRestarts, MetricEngineInfo, MetricLoRAAdapterInfo}
	for _, r := range reasons {
		want = append(want, "`"+r+"`")
	}
	for _, e := range engines {
		want = append(want, "`"+e.name+"`")
		if e.lora != nil {
			want = append(want, e.lora.family, e.lora.runningLabel, e.lora.waitingLabel)
		}
	}
	for _, r := range table {
		want = append(want, r.name)
		for _, sources := range r.from {
			for _, src := range sources {
				want = append(want, src.family)
				if src.value != "" {
					want = append(want, src.value)
				}
				if src.per != nil {
					want = append(want, src.per.family, src.per.value)
				}
			}
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("docs/server-metrics.md does not mention %s", w)
		}
	}
}
