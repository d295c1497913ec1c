package metricdocs

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	doc := "intro\n" +
		"| name | type | labels | definition |\n|---|---|---|---|\n" +
		"| `a_total` | counter | target, result | x |\n" +
		"| `b_seconds` | histogram | target, engine, model_name? | y |\n" +
		"| `c` | gauge | | z |\n" +
		"| not a metric row |\n"
	got, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("parsed %d rows, want 3: %v", len(got), got)
	}
	if a := got["a_total"]; a.Type != "counter" || !slices.Equal(a.Labels, []string{"result", "target"}) {
		t.Errorf("a_total = %+v", a)
	}
	b := got["b_seconds"]
	for _, tc := range []struct {
		labels []string
		want   bool
	}{
		{[]string{"target", "engine"}, true},
		{[]string{"target", "engine", "model_name"}, true},
		{[]string{"target"}, false},                             // a required label missing
		{[]string{"target", "engine", "instance"}, false},       // an undocumented label
		{[]string{"engine", "model_name", "model_name"}, false}, // target missing
	} {
		if got := b.Allows(tc.labels); got != tc.want {
			t.Errorf("Allows(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if c := got["c"]; c.Type != "gauge" || len(c.Labels) != 0 || !c.Allows(nil) || c.Allows([]string{"x"}) {
		t.Errorf("c = %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse(strings.NewReader("no rows here\n")); err == nil {
		t.Error("a document without metric rows must be an error")
	}
	dup := "| `a` | gauge | | x |\n| `a` | gauge | | y |\n"
	if _, err := Parse(strings.NewReader(dup)); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate rows: %v", err)
	}
}
