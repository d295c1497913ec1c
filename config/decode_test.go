package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestMergeKeysAndAnchors(t *testing.T) {
	y := doc(
		"x-defaults: &d",
		"  url: http://127.0.0.1:8000",
		"  model: shared",
		"  timeout: 20s",
		"x-traffic: &tr",
		"  rate: 3",
		"targets:",
		"  - <<: *d",
		"    name: a",
		"    traffic: *tr",
		"  - <<: [*d]",
		"    name: b",
		"    model: own", // a target's own key wins over a merged one
	)
	c := mustParse(t, y)
	a, b := c.Targets[0], c.Targets[1]
	if a.URL != "http://127.0.0.1:8000" || a.Model != "shared" || a.Timeout != 20*time.Second || a.Traffic.Rate != 3 {
		t.Errorf("target a = %+v", a)
	}
	if b.Model != "own" || b.Timeout != 20*time.Second {
		t.Errorf("target b = %+v", b)
	}
}

func TestMergedFieldErrorsPointAtTheAnchor(t *testing.T) {
	y := doc(
		"x-defaults: &d",
		"  url: http://127.0.0.1:8000",
		"  modle: m", // line 3: the typo lives here, whichever target merges it
		"targets:",
		"  - <<: *d",
		"    name: a",
		"    model: m",
	)
	_, err := Parse([]byte(y))
	checkErrors(t, asErrors(t, err), []wantErr{{"targets[0].modle", 3, `did you mean "model"?`}})
}

func TestExtensionKeysOnlyAtTopLevel(t *testing.T) {
	_, err := Parse([]byte(base("    x-note: hello")))
	checkErrors(t, asErrors(t, err), []wantErr{{"targets[0].x-note", 5, "unknown field"}})
}

func TestAliasCycleAndBombFailCleanly(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		msg  string
	}{
		{"cycle in free-form body", base("    request:", "      extra_body: &b", "        self: *b"), "refers to a node that contains it"},
		{"alias bomb", bomb(), "configuration too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want one containing %q", err, tt.msg)
			}
			// Not a timing assertion on performance: a bound far above the normal
			// microseconds, to catch an expansion that does not stop.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// bomb is a "billion laughs" document: each level doubles tenfold the nodes of the last.
func bomb() string {
	var b strings.Builder
	b.WriteString("x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 9; i++ {
		prev := "*a" + string(rune('0'+i-1))
		b.WriteString("x-a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(prev)
		}
		b.WriteString("]\n")
	}
	b.WriteString(base("    request:", "      extra_body:", "        lol: *a8"))
	return b.String()
}

func TestExtraBodyDecodesToJSONValues(t *testing.T) {
	c := mustParse(t, base(
		"    request:",
		"      extra_body:",
		"        top_k: 20",
		"        top_p: 0.9",
		"        skip_special_tokens: false",
		"        stop: [\"\\n\\n\", END]",
		"        chat_template_kwargs: {enable_thinking: false}",
		"        date_like: 2024-01-02",
		"        nothing: null",
		"        big: 18446744073709551615",
	))
	got, err := json.Marshal(c.Targets[0].Request.ExtraBody)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"big":18446744073709551615,"chat_template_kwargs":{"enable_thinking":false},"date_like":"2024-01-02",` +
		`"nothing":null,"skip_special_tokens":false,"stop":["\n\n","END"],"top_k":20,"top_p":0.9}`
	if string(got) != want {
		t.Errorf("extra_body JSON\n got %s\nwant %s", got, want)
	}
}

func TestHeadersDecode(t *testing.T) {
	c := mustParse(t, base("    headers:", "      X-Num: 42", "      X-Empty:", "      X-Str: 'a b'"))
	h := c.Targets[0].Headers
	if h["X-Num"] != "42" || h["X-Str"] != "a b" {
		t.Errorf("headers = %v", h)
	}
	if v, ok := h["X-Empty"]; !ok || v != "" {
		t.Errorf("X-Empty = %q, %v; want present and empty", v, ok)
	}
}

func TestSuggest(t *testing.T) {
	fields := yamlFields(reflect.TypeOf(Target{}))
	tests := []struct{ key, want string }{
		{"modle", `(did you mean "model"?)`},
		{"Model", `(did you mean "model"?)`},
		{"api-key-env", `(did you mean "api_key_env"?)`},
		{"pacer", `(did you mean "traffic.pacer"? it belongs under traffic:)`},
		{"engine", `(did you mean "metrics.engine"? it belongs under metrics:)`},
		{"zzz", ""},
		{"ur", `(did you mean "url"?)`},
		{"ab", ""}, // two edits in a two-letter key is a guess too far
	}
	for _, tt := range tests {
		if got := strings.TrimSpace(suggest(tt.key, fields)); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"traffic", "trafic", 1}, {"kitten", "sitting", 3}, {"é", "e", 1}, {"modle", "model", 1}, {"ab", "ba", 1}}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
