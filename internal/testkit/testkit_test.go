package testkit

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestValue(t *testing.T) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(`# TYPE c counter
c{a="1",b="x"} 3
c{a="2"} 5
# TYPE h histogram
h_bucket{le="+Inf"} 7
h_sum 1
h_count 7
# TYPE g gauge
g{a=""} 9
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
		ok     bool
	}{
		{"c", map[string]string{"a": "2"}, 5, true},
		{"c", map[string]string{"a": "1", "b": "x"}, 3, true},
		{"c", map[string]string{"a": "3"}, 0, false},
		{"c", map[string]string{"b": ""}, 0, false}, // a label the series lacks does not match ""
		{"h", nil, 7, true},
		{"missing", nil, 0, false},
	} {
		got, ok := Value(mfs, tc.name, tc.labels)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Value(%s, %v) = %v, %v; want %v, %v", tc.name, tc.labels, got, ok, tc.want, tc.ok)
		}
	}
}

func TestWaitForAndBuffer(t *testing.T) {
	var b LockedBuffer
	go func() { _, _ = b.Write([]byte("ready")) }()
	WaitFor(t, 5*time.Second, time.Millisecond, "the write", func() bool { return b.String() == "ready" })
}
