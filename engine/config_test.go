package engine

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/inferprobe/inferprobe/collector/server"
	"github.com/inferprobe/inferprobe/config"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/traffic"
)

// doc joins lines into a YAML document; lines[0] is line 1.
func doc(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// base is a minimal valid target on lines 1-4; cases append their lines from line 5 on.
func base(extra ...string) string {
	return doc(append([]string{"targets:", "  - name: t", "    url: http://127.0.0.1:8000", "    model: m"}, extra...)...)
}

type wantErr struct {
	path string
	line int
	msg  string
}

func checkErrors(t *testing.T, err error, want []wantErr) {
	t.Helper()
	var got config.Errors
	if !errors.As(err, &got) {
		t.Fatalf("error %v (%T) is not config.Errors", err, err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Path != w.path || g.Line != w.line || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("error %d = {path %q, line %d, msg %q}, want {path %q, line %d, msg containing %q}",
				i, g.Path, g.Line, g.Msg, w.path, w.line, w.msg)
		}
	}
}

// TestRegistryErrorsNameFieldAndLine: what the registries check (API flavours, pacers and
// their parameters, stages, server engines) is reported like every config error, with the
// field path and the line, in one round with the generic errors.
func TestRegistryErrorsNameFieldAndLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{"api unknown", base("    api: anthropic-chat"),
			[]wantErr{{"targets[0].api", 5, `must be one of openai-chat, openai-completions, openai-responses, anthropic-messages, tgi, triton-generate, not "anthropic-chat"`}}},
		{"pacer unknown", base("    traffic:", "      pacer: bursty"),
			[]wantErr{{"targets[0].traffic.pacer", 6, `must be one of constant, poisson, gamma, concurrent, stages, trace, not "bursty"`}}},
		{"rate zero", base("    traffic:", "      rate: 0"),
			[]wantErr{{"targets[0].traffic.rate", 6, "must be > 0"}}},
		{"rate too high", base("    traffic:", "      rate: 1e6"),
			[]wantErr{{"targets[0].traffic.rate", 6, "≤ 100000"}}},
		{"rate not finite", base("    traffic:", "      rate: .inf"),
			[]wantErr{{"targets[0].traffic.rate", 6, "finite"}}},
		{"burstiness zero", base("    traffic:", "      pacer: gamma", "      burstiness: 0"),
			[]wantErr{{"targets[0].traffic.burstiness", 7, "must be > 0"}}},
		{"burstiness negative", base("    traffic: {pacer: gamma, rate: 2, burstiness: -1}"),
			[]wantErr{{"targets[0].traffic.burstiness", 5, "must be > 0"}}},
		{"concurrency zero", base("    traffic:", "      pacer: concurrent", "      concurrency: 0"),
			[]wantErr{{"targets[0].traffic.concurrency", 7, "must be ≥ 1"}}},
		{"concurrency missing", base("    traffic:", "      pacer: concurrent"),
			[]wantErr{{"targets[0].traffic.concurrency", 5, "must be ≥ 1"}}},
		{"field the pacer does not read", base("    traffic:", "      pacer: concurrent", "      concurrency: 4", "      rate: 3"),
			[]wantErr{{"targets[0].traffic.rate", 8, "is not used by pacer concurrent"}}},
		{"max_in_flight below concurrency", base("    traffic: {pacer: concurrent, concurrency: 16, max_in_flight: 8}"),
			[]wantErr{{"targets[0].traffic.max_in_flight", 5, "below concurrency (16)"}}},
		{"stages missing", base("    traffic:", "      pacer: stages"),
			[]wantErr{{"targets[0].traffic.stages", 5, "needs at least one stage"}}},
		{"stage with neither rate nor concurrency", base("    traffic:", "      pacer: stages", "      stages:",
			"        - {rate: 1, duration: 1m}", "        - {duration: 1m}"),
			[]wantErr{{"targets[0].traffic.stages[1]", 9, "needs rate (requests per second) or concurrency"}}},
		{"stage with both", base("    traffic:", "      pacer: stages", "      stages:", "        - rate: 1", "          concurrency: 2", "          duration: 1m"),
			[]wantErr{{"targets[0].traffic.stages[0].concurrency", 9, "cannot be used together with rate"}}},
		{"stage duration missing", base("    traffic:", "      pacer: stages", "      stages: [{rate: 1}]"),
			[]wantErr{{"targets[0].traffic.stages[0].duration", 7, "must be > 0"}}},
		{"stage pacer unknown", base("    traffic:", "      pacer: stages", "      stages:", "        - {rate: 1, duration: 1m, pacer: concurrent}"),
			[]wantErr{{"targets[0].traffic.stages[0].pacer", 8, `must be one of constant, poisson, gamma, not "concurrent"`}}},
		{"stage gamma without burstiness", base("    traffic:", "      pacer: stages", "      stages:", "        - {rate: 1, duration: 1m, pacer: gamma}"),
			[]wantErr{{"targets[0].traffic.stages[0].burstiness", 8, "must be > 0"}}},
		{"stage concurrency below 1", base("    traffic:", "      pacer: stages", "      stages:", "        - concurrency: -2", "          duration: 1m"),
			[]wantErr{{"targets[0].traffic.stages[0].concurrency", 8, "must be ≥ 1"}}},
		{"metrics engine unknown", base("    metrics:", "      engine: ollama"),
			[]wantErr{{"targets[0].metrics.engine", 6, `not "ollama"`}}},
		{"generic and registry errors in one round, in file order", base("    api: grpc", "    traffic:", "      max_in_flight: 0", "      pacer: gamma", "      burstiness: -3"),
			[]wantErr{{"targets[0].api", 5, "must be one of"}, {"targets[0].traffic.max_in_flight", 7, "≥ 1"}, {"targets[0].traffic.burstiness", 9, "must be > 0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors; config %+v", c)
			}
			checkErrors(t, err, tt.want)
		})
	}
}

// TestRegistryDefaults: the defaults that depend on a registered kind.
func TestRegistryDefaults(t *testing.T) {
	parse := func(t *testing.T, y string) config.Target {
		t.Helper()
		c, err := Parse([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		return c.Targets[0]
	}
	tg := parse(t, base())
	if tg.API != prober.APIOpenAIChat || tg.Path != "/v1/chat/completions" || tg.RequestURL() != "http://127.0.0.1:8000/v1/chat/completions" {
		t.Errorf("api %q path %q url %q", tg.API, tg.Path, tg.RequestURL())
	}
	if tg.Traffic.Pacer != traffic.KindConstant || tg.Traffic.Rate != 1 || tg.Traffic.MaxInFlight != 64 {
		t.Errorf("traffic defaults %+v", tg.Traffic)
	}
	if tg := parse(t, base("    api: openai-completions")); tg.Path != "/v1/completions" {
		t.Errorf("completions path %q", tg.Path)
	}
	if tg := parse(t, base("    path: /openai/v1/chat/completions?api-version=2024-06-01")); tg.Path != "/openai/v1/chat/completions?api-version=2024-06-01" {
		t.Errorf("explicit path %q", tg.Path)
	}
	if tg := parse(t, base("    traffic: {pacer: gamma}")); tg.Traffic.Rate != 1 || tg.Traffic.Burstiness != 1 {
		t.Errorf("gamma defaults %+v", tg.Traffic)
	}
	if tg := parse(t, base("    traffic: {pacer: concurrent, concurrency: 256}")); tg.Traffic.MaxInFlight != 256 || tg.Traffic.Rate != 0 {
		t.Errorf("concurrent defaults %+v", tg.Traffic)
	}
	if tg := parse(t, base("    traffic: {pacer: stages, stages: [{rate: 5, duration: 1m}, {concurrency: 100, duration: 1m}]}")); tg.Traffic.MaxInFlight != 100 || tg.Traffic.Rate != 0 {
		t.Errorf("stages defaults %+v", tg.Traffic)
	}
	if tg := parse(t, base("    traffic: {pacer: concurrent, concurrency: 4, max_in_flight: 10}")); tg.Traffic.MaxInFlight != 10 {
		t.Errorf("explicit max_in_flight %+v", tg.Traffic)
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig("http://127.0.0.1:8000")
	if err := c.Validate(Extensions()...); err != nil {
		t.Fatalf("the built-in config does not validate: %v", err)
	}
	tg := c.Targets[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", tg.Name, "simulator"},
		{"api", tg.API, prober.APIOpenAIChat},
		{"pacer", tg.Traffic.Pacer, traffic.KindConstant},
		{"rate", tg.Traffic.Rate, 1.0},
		{"input tokens", tg.Request.InputTokens.N, 128},
		{"max tokens", tg.Request.MaxTokens, 32},
		{"ignore eos", tg.Request.IgnoreEOS, true},
		{"warmup requests", tg.Warmup.Requests, 3},
		{"request url", tg.RequestURL(), "http://127.0.0.1:8000/v1/chat/completions"},
		{"metrics url", tg.Metrics.URL, "http://127.0.0.1:8000/metrics"},
		{"metrics engine", tg.Metrics.Engine, server.EngineVLLM},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	d := DefaultConfig("http://127.0.0.1:8000")
	*d.Targets[0].Request.CacheBust = false
	if !*c.Targets[0].Request.CacheBust {
		t.Error("default configs share state")
	}
}

func readConfigDocs(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// docTableKeys returns the first-column values (`name`) of the table under heading.
func docTableKeys(t *testing.T, text, heading string) []string {
	t.Helper()
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("docs/configuration.md has no %q section", heading)
	}
	section := text[start+len(heading)+2:]
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	var keys []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(section, -1) {
		keys = append(keys, m[1])
	}
	return keys
}

// TestDocsMatchRegistries: docs/configuration.md lists exactly the registered API flavours,
// pacers and engines, in registry order, and each API's default path.
func TestDocsMatchRegistries(t *testing.T) {
	text := readConfigDocs(t)
	var pacers []string
	for _, k := range traffic.PacerKinds() {
		pacers = append(pacers, k.Name)
	}
	for _, c := range []struct {
		heading string
		names   []string
	}{
		{"#### API flavours", prober.APINames()},
		{"#### pacers", pacers},
		{"#### engines", server.EngineNames()},
	} {
		if got := docTableKeys(t, text, c.heading); !slices.Equal(got, c.names) {
			t.Errorf("%s lists %v; the registry has %v", c.heading, got, c.names)
		}
	}
	for _, a := range prober.APIs() {
		if !strings.Contains(text, "| `"+a.Name+"` | `"+a.Path+"` |") {
			t.Errorf("docs do not give %s's default path %s", a.Name, a.Path)
		}
	}
	for _, k := range traffic.PacerKinds() {
		var reads []string
		for _, f := range k.Fields {
			reads = append(reads, "`"+f+"`")
		}
		if !strings.Contains(text, "| `"+k.Name+"` | "+strings.Join(reads, ", ")+" |") {
			t.Errorf("docs do not say pacer %s reads %v", k.Name, k.Fields)
		}
	}
}

// TestDocsYAMLParsesWithRegistries: every whole configuration in docs/configuration.md (and
// the traffic snippets, wrapped in a target) passes the registries' checks too.
func TestDocsYAMLParsesWithRegistries(t *testing.T) {
	text := readConfigDocs(t)
	blocks := regexp.MustCompile("(?ms)^( *)```yaml\n(.*?)^ *```").FindAllStringSubmatch(text, -1)
	checked := 0
	for _, b := range blocks {
		y := b[2]
		switch {
		case strings.Contains(y, "file:") || strings.Contains(y, "<port>") || strings.Contains(y, "api_key_env"):
			continue // needs files or secrets: the config package's docs test loads those
		case strings.HasPrefix(y, "traffic:"):
			for _, snippet := range regexp.MustCompile(`(?m)^traffic:.*(?:\n  .*)*`).FindAllString(y, -1) {
				wrapped := base(strings.Split("    "+strings.ReplaceAll(snippet, "\n", "\n    "), "\n")...)
				if _, err := Parse([]byte(wrapped)); err != nil {
					t.Errorf("traffic snippet does not parse:\n%s\n%v", snippet, err)
				}
				checked++
			}
		case strings.Contains(y, "targets:"):
			if _, err := Parse([]byte(y)); err != nil {
				t.Errorf("docs block does not parse:\n%s\n%v", y, err)
			}
			checked++
		}
	}
	if checked < 4 {
		t.Fatalf("checked only %d docs blocks", checked)
	}
}
