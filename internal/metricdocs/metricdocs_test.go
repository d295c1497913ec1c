package metricdocs

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
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

func TestCheck(t *testing.T) {
	docs, err := Parse(strings.NewReader("| `p_total` | counter | target | x |\n"))
	if err != nil {
		t.Fatal(err)
	}
	family := func(name string, typ dto.MetricType, labels ...string) *dto.MetricFamily {
		m := &dto.Metric{}
		for _, l := range labels {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l), Value: proto.String("v")})
		}
		return &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum(), Metric: []*dto.Metric{m}}
	}
	for _, tc := range []struct {
		name string
		mf   *dto.MetricFamily
		want int
	}{
		{"agrees", family("p_total", dto.MetricType_COUNTER, "target"), 0},
		{"undocumented", family("p_other", dto.MetricType_GAUGE), 1},
		{"wrong type", family("p_total", dto.MetricType_GAUGE, "target"), 1},
		{"extra label", family("p_total", dto.MetricType_COUNTER, "target", "pod"), 1},
		{"other prefix ignored", family("go_goroutines", dto.MetricType_GAUGE), 0},
	} {
		if got := Check(docs, []*dto.MetricFamily{tc.mf}, "p_"); len(got) != tc.want {
			t.Errorf("%s: problems %v, want %d", tc.name, got, tc.want)
		}
	}
}
