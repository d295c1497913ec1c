package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func readDocs(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestDocsListEveryField keeps docs/configuration.md complete: each YAML key of the schema
// needs a row in the reference table of its block.
func TestDocsListEveryField(t *testing.T) {
	text := readDocs(t)
	blocks := []struct {
		heading string
		typ     reflect.Type
	}{
		{"## How the file is read", reflect.TypeOf(Config{})},
		{"### target", reflect.TypeOf(Target{})},
		{"### tls", reflect.TypeOf(TLS{})},
		{"### traffic", reflect.TypeOf(Traffic{})},
		{"#### stages", reflect.TypeOf(Stage{})},
		{"#### trace", reflect.TypeOf(Trace{})},
		{"#### length distributions", reflect.TypeOf(LengthDist{})},
		{"#### conversation", reflect.TypeOf(Conversation{})},
		{"#### lora_traffic_split", reflect.TypeOf(LoRAAdapter{})},
		{"#### dataset", reflect.TypeOf(Dataset{})},
		{"#### shared_prefix", reflect.TypeOf(SharedPrefix{})},
		{"### request", reflect.TypeOf(Request{})},
		{"#### kserve", reflect.TypeOf(KServe{})},
		{"### warmup", reflect.TypeOf(Warmup{})},
		{"### slo", reflect.TypeOf(SLO{})},
		{"### metrics", reflect.TypeOf(Metrics{})},
		{"### otel", reflect.TypeOf(OTel{})},
		{"### sweep", reflect.TypeOf(Sweep{})},
		{"### experiment", reflect.TypeOf(Experiment{})},
		{"#### experiment.load", reflect.TypeOf(ExperimentLoad{})},
		{"#### experiment.command", reflect.TypeOf(ExperimentCommand{})},
		{"#### experiment.hook", reflect.TypeOf(ExperimentHook{})},
		{"#### experiment.subsystems", reflect.TypeOf(ExperimentSubsystems{})},
	}
	for _, b := range blocks {
		start := strings.Index(text, "\n"+b.heading+"\n")
		if start < 0 {
			t.Errorf("docs lack a %q section", b.heading)
			continue
		}
		section := text[start+1:]
		if end := strings.Index(section[len(b.heading):], "\n#"); end >= 0 {
			section = section[:len(b.heading)+end]
		}
		for _, f := range yamlFields(b.typ) {
			if !strings.Contains(section, "| `"+f.name+"` |") {
				t.Errorf("section %q has no table row for %q", b.heading, f.name)
			}
		}
	}
}

// TestDocsExamplesParse checks the YAML snippets of docs/configuration.md that form whole
// configurations, so the documentation cannot drift from what the loader accepts.
func TestDocsExamplesParse(t *testing.T) {
	text := readDocs(t)
	// Blocks may be indented (inside a list item); the indent is removed below.
	blocks := regexp.MustCompile("(?ms)^( *)```yaml\n(.*?)^ *```").FindAllStringSubmatch(text, -1)
	dir := t.TempDir()
	// The annotated example names a key file and a CA bundle relative to the file.
	writeFile(t, dir, "secrets/gateway.key", "gateway-key\n")
	certFile, _ := writeCertPair(t, filepath.Join(dir, "certs"))
	if err := os.Rename(certFile, filepath.Join(dir, "certs", "internal-ca.pem")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LLM_API_KEY", "k")
	checked := 0
	for i, b := range blocks {
		var lines []string
		for _, l := range strings.Split(b[2], "\n") {
			lines = append(lines, strings.TrimPrefix(l, b[1]))
		}
		y := strings.Join(lines, "\n")
		// Skip fragments and the built-in configuration, whose url holds a placeholder.
		if !strings.Contains(y, "\ntargets:\n") && !strings.HasPrefix(y, "targets:\n") || strings.Contains(y, "<port>") {
			continue
		}
		p := writeFile(t, dir, "doc.yml", y)
		if _, err := Load(p); err != nil {
			t.Errorf("yaml block %d of docs/configuration.md does not load:\n%s\nerror: %v", i, y, err)
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("checked %d configurations in the docs, want at least 2 (the merge-key sample and the annotated example)", checked)
	}
}
