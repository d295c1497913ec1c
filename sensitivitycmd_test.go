package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/sensitivity"
	"github.com/inferprobe/inferprobe/simulator"
)

// sensitivityHook records the hook requests of an experiment and answers 500 to the levels in
// fail.
type sensitivityHook struct {
	mu     sync.Mutex
	bodies []string
	fail   map[string]bool
}

func (h *sensitivityHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, string(b))
	if h.fail[r.URL.Query().Get("level")] {
		http.Error(w, "no", http.StatusInternalServerError)
	}
}

const sensitivityConfig = `
targets: [{name: sim, url: %q, model: inferprobe-sim, request: {input_tokens: 4, max_tokens: 4, ignore_eos: true}}]
experiment:
  levels: [0, 1ms, 2ms]
  repeats: 2
  warmup: 100ms
  measure: 400ms
  load: {rate: 60}
  hook: {url: "%s/delay?level={{.Level}}", method: PUT, body: '{{.DelayNS}} {{.TargetsFile}}'}
  subsystems: {delay: 1ms, files: [patterns/sampler.txt]}
`

// TestSensitivityCommand: `inferprobe sensitivity` against the simulator, with a hook that
// fails one level and an open-loop (rate) load, exits 0 and writes a report whose keys are
// the ones docs/sensitivity.md lists (both ways), a PNG that decodes and an SVG that parses;
// the subsystem file is found relative to the configuration file. With every level failing
// it exits 1 and the report still holds the levels' errors; without an experiment block, 2.
func TestSensitivityCommand(t *testing.T) {
	_, url := startSim(t, func(c *simulator.Config) { c.TTFTBase, c.ITL = 2*time.Millisecond, time.Millisecond })
	hook := &sensitivityHook{fail: map[string]bool{"1": true}}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "patterns"), 0o755); err != nil {
		t.Fatal(err)
	}
	sampler := filepath.Join(dir, "patterns", "sampler.txt")
	if err := os.WriteFile(sampler, []byte("vllm.sampling:*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(sensitivityConfig, url, hs.URL))
	out := filepath.Join(dir, "out")
	began := time.Now()
	code, stdout, stderr := runCLI(t, "sensitivity", "--config.file="+cfg, "--output="+out)
	wall := time.Since(began)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"classification: ", "experiment overhead: ", "subsystems at 1ms", "failed: hook: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	hook.mu.Lock()
	bodies := slices.Clone(hook.bodies)
	hook.mu.Unlock()
	// Three levels, then the subsystem file at 1 ms (level 0 is the baseline).
	if want := []string{"0 ", "1000000 ", "2000000 ", "1000000 " + sampler}; !slices.Equal(bodies, want) {
		t.Errorf("hook bodies %q, want %q", bodies, want)
	}

	data, err := os.ReadFile(filepath.Join(out, "sensitivity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep sensitivity.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.SchemaVersion != 1 || rep.Tool != "inferprobe" || rep.StartedAt.IsZero() || !rep.FinishedAt.After(rep.StartedAt) {
		t.Errorf("report header: schema %d tool %q %v–%v", rep.SchemaVersion, rep.Tool, rep.StartedAt, rep.FinishedAt)
	}
	if len(rep.Levels) != 3 || !strings.Contains(rep.Levels[1].Error, "500") || len(rep.Levels[1].Repeats) != 0 {
		t.Fatalf("levels %+v, want level 1 failed by the hook's 500", rep.Levels)
	}
	for _, i := range []int{0, 2} {
		l := rep.Levels[i]
		if l.Error != "" || l.OutputTokensPerSecond.N != 2 || len(l.Repeats) != 2 || l.Repeats[0].Requests == 0 {
			t.Errorf("level %d: %+v", i, l)
		}
	}
	if s := rep.Subsystems; len(s) != 1 || s[0].File != sampler || s[0].Error != "" || s[0].OutputTokensPerSecond.N != 2 {
		t.Errorf("subsystems %+v", s)
	}
	// The overhead covers the plot, written before the report, and all but loading the
	// configuration and writing the JSON of what the command took outside the windows.
	if o := rep.Overhead; o.WindowsSeconds != 6*0.5 || o.OutputSeconds <= 0 || o.TotalSeconds < o.OutputSeconds ||
		wall.Seconds()-o.WindowsSeconds > o.TotalSeconds+1 {
		t.Errorf("overhead %+v, want 6 repeats × 0.5 s of windows and all but 1 s of the command's %v beyond them", o, wall)
	}

	// The keys: docs/sensitivity.md lists every key the report type can write, and the
	// written report has every key that is not left out when empty.
	documented := docsReportKeys(t)
	all, optional := map[string]bool{}, map[string]bool{}
	jsonKeys(reflect.TypeFor[sensitivity.Report](), all, optional)
	for k := range all {
		if !documented[k] {
			t.Errorf("report key %q is not in docs/sensitivity.md", k)
		}
	}
	for k := range documented {
		if !all[k] {
			t.Errorf("docs/sensitivity.md lists %q, which the report does not have", k)
		}
	}
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	collectKeys(tree, written)
	for k := range all {
		if !written[k] && !optional[k] {
			t.Errorf("sensitivity.json lacks %q", k)
		}
	}

	f, err := os.Open(filepath.Join(out, "sensitivity.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("sensitivity.png: %v", err)
	}
	svg, err := os.ReadFile(filepath.Join(out, "sensitivity.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if root, err := xmlRoot(svg); err != nil || root != "svg" {
		t.Errorf("sensitivity.svg: root %q, %v", root, err)
	}

	// Every level failing: exit 1, and the report says why for each.
	hook.mu.Lock()
	hook.fail = map[string]bool{"0": true, "1": true, "2": true}
	hook.mu.Unlock()
	out1 := filepath.Join(dir, "out1")
	code, stdout, stderr = runCLI(t, "sensitivity", "--config.file="+cfg, "--output="+out1)
	if code != 1 || !strings.Contains(stderr, "no level could be measured") {
		t.Errorf("every level failing: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var failed sensitivity.Report
	if data, err := os.ReadFile(filepath.Join(out1, "sensitivity.json")); err != nil || json.Unmarshal(data, &failed) != nil ||
		len(failed.Levels) != 3 || failed.Levels[2].Error == "" {
		t.Errorf("report of the failed experiment (%v): %s", err, data)
	}

	// No experiment block: exit 2 before anything runs.
	plain := writeConfig(t, t.TempDir(), fmt.Sprintf("targets: [{name: sim, url: %q, model: m}]\n", url))
	if code, _, stderr := runCLI(t, "sensitivity", "--config.file="+plain); code != 2 || !strings.Contains(stderr, "no experiment block") {
		t.Errorf("no experiment block: exit %d: %s", code, stderr)
	}
}

// docsReportKeys reads the keys of sensitivity.json from docs/sensitivity.md: every
// identifier in a code span of the paragraph that describes the file.
func docsReportKeys(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile("docs/sensitivity.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "`sensitivity.json` (`schema_version` 1"
	i := bytes.Index(doc, []byte(start))
	if i < 0 {
		t.Fatalf("docs/sensitivity.md has no paragraph starting %q", start)
	}
	para := string(doc[i+len("`sensitivity.json`"):])
	if j := strings.Index(para, "\n\n"); j >= 0 {
		para = para[:j]
	}
	keys := map[string]bool{}
	for _, span := range regexp.MustCompile("`[^`]*`").FindAllString(para, -1) {
		for _, id := range regexp.MustCompile(`[A-Za-z][A-Za-z0-9_.]*`).FindAllString(span, -1) {
			keys[id] = true
		}
	}
	return keys
}

// jsonKeys adds the JSON object keys that values of t can have to all, and those left out
// when empty to optional.
func jsonKeys(t reflect.Type, all, optional map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.Implements(reflect.TypeFor[json.Marshaler]()) {
		return
	}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		all[name] = true
		if strings.Contains(opts, "omitempty") {
			optional[name] = true
		}
		jsonKeys(f.Type, all, optional)
	}
}

// collectKeys adds every object key in a decoded JSON value to keys.
func collectKeys(v any, keys map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			keys[k] = true
			collectKeys(x, keys)
		}
	case []any:
		for _, x := range v {
			collectKeys(x, keys)
		}
	}
}

// xmlRoot parses doc as XML to its end and returns the root element's name.
func xmlRoot(doc []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return root, nil
		}
		if err != nil {
			return root, err
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
}
