package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/inferprobe/inferprobe/internal/testkit"
)

// sloSeries returns every inferprobe_slo_* series of target a: name (with the sli label for
// objectives) to value, and how many series each name has (one per name, after a reload too).
func sloSeries(mfs map[string]*dto.MetricFamily) (map[string]float64, map[string]int) {
	values, counts := map[string]float64{}, map[string]int{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "inferprobe_slo_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			key, target := name, ""
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "sli":
					key += "{" + l.GetValue() + "}"
				case "target":
					target = l.GetValue()
				}
			}
			if target != "a" {
				continue
			}
			values[key] = m.GetGauge().GetValue()
			counts[key]++
		}
	}
	return values, counts
}

// Every value of a non-default slo block reaches /metrics as the series the rules read, and a
// reload with other values replaces them (no stale series of the old generation beside them).
func TestSLOBlockReachesMetrics(t *testing.T) {
	_, url := startSim(t, nil)
	dir := t.TempDir()
	cfg := func(slo string) string {
		return fmt.Sprintf(`
targets:
  - name: a
    url: %s
    model: inferprobe-sim
    traffic: {rate: 2}
    request: {input_tokens: 8, max_tokens: 4}
    slo: {%s}
`, url, slo)
	}
	path := writeConfig(t, dir, cfg("ttft: 2s, e2e: 7500ms, target_ratio: 0.999, window: 168h, regression_factor: 2.5"))
	d := startDaemon(t, path)
	check := func(want map[string]float64) {
		t.Helper()
		got, counts := sloSeries(d.scrape(t))
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v || counts[k] != 1 {
				t.Errorf("%s = %v (%d series), want %v (1 series)", k, g, counts[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s = %v, which the slo block does not set", k, got[k])
			}
		}
	}
	check(map[string]float64{
		"inferprobe_slo_objective_seconds{ttft}": 2,
		"inferprobe_slo_objective_seconds{e2e}":  7.5,
		"inferprobe_slo_target_ratio":            0.999,
		"inferprobe_slo_window_seconds":          168 * 3600,
		"inferprobe_slo_regression_factor":       2.5,
	})

	writeConfig(t, dir, cfg("tpot: 40ms, target_ratio: 0.95, window: 72h, regression_factor: 4"))
	resp, err := testClient.Post(d.base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reload answered %d", resp.StatusCode)
	}
	waitFor(t, 10*time.Second, "the reload to apply", func() bool {
		v, _ := testkit.Value(d.scrape(t), "inferprobe_slo_regression_factor", map[string]string{"target": "a"})
		return v == 4
	})
	check(map[string]float64{
		"inferprobe_slo_objective_seconds{tpot}": 0.04,
		"inferprobe_slo_target_ratio":            0.95,
		"inferprobe_slo_window_seconds":          72 * 3600,
		"inferprobe_slo_regression_factor":       4,
	})
}
