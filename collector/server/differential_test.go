package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// readBoth routes body through prepare with every line also passed to expfmt, and returns the
// tableReader's families and expfmt's.
func readBoth(body []byte, openMetrics bool) (table, ref map[string]*dto.MetricFamily, err error) {
	sel, err := newSelection(engines, []string{".*"})
	if err != nil {
		return nil, nil, err
	}
	tr := newTableReader()
	var dst bytes.Buffer
	if err := prepare(&dst, body, openMetrics, sel, make([]int, len(engines)), tr); err != nil {
		return nil, nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	if ref, err = p.TextToMetricFamilies(&dst); err != nil {
		return nil, nil, err
	}
	return tr.families(), ref, nil
}

// sameFamilies reports how the table reader's families differ from expfmt's, if they do.
func sameFamilies(table, ref map[string]*dto.MetricFamily) error {
	for name, f := range table {
		r, ok := ref[name]
		if !ok {
			return fmt.Errorf("family %q read by the table reader only", name)
		}
		if f.GetType() != r.GetType() {
			return fmt.Errorf("family %q: type %s, expfmt says %s", name, f.GetType(), r.GetType())
		}
		got, want := canonical(f), canonical(r)
		if !slices.Equal(got, want) {
			return fmt.Errorf("family %q:\n got %q\nwant %q", name, got, want)
		}
	}
	sel, _ := newSelection(engines, nil)
	for name := range ref {
		if _, ok := sel.families[name]; ok {
			if _, ok := table[name]; !ok {
				return fmt.Errorf("table family %q read by expfmt only", name)
			}
		}
	}
	return nil
}

// canonical renders a family's series, sorted, with what normalisation reads: labels, values,
// counts, sums, buckets and quantiles (not timestamps or exemplars).
func canonical(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var b strings.Builder
		labels := slices.Clone(m.GetLabel())
		sort.Slice(labels, func(i, j int) bool { return labels[i].GetName() < labels[j].GetName() })
		for _, lp := range labels {
			fmt.Fprintf(&b, "%s=%q,", lp.GetName(), lp.GetValue())
		}
		switch {
		case m.Gauge != nil:
			fmt.Fprintf(&b, " gauge %v", m.GetGauge().GetValue())
		case m.Counter != nil:
			fmt.Fprintf(&b, " counter %v", m.GetCounter().GetValue())
		case m.Untyped != nil:
			fmt.Fprintf(&b, " untyped %v", m.GetUntyped().GetValue())
		case m.Summary != nil:
			s := m.GetSummary()
			fmt.Fprintf(&b, " summary %d %v", s.GetSampleCount(), s.GetSampleSum())
			for _, q := range s.GetQuantile() {
				fmt.Fprintf(&b, " q%v=%v", q.GetQuantile(), q.GetValue())
			}
		case m.Histogram != nil:
			h := m.GetHistogram()
			fmt.Fprintf(&b, " histogram %d/%v %v", h.GetSampleCount(), h.GetSampleCountFloat(), h.GetSampleSum())
			for _, bk := range h.GetBucket() {
				fmt.Fprintf(&b, " le%v=%d/%v", bk.GetUpperBound(), bk.GetCumulativeCount(), bk.GetCumulativeCountFloat())
			}
		}
		out = append(out, b.String())
	}
	sort.Strings(out)
	return out
}

// TestTableReaderMatchesExpfmt holds the table reader to expfmt's text parser on every fixture
// and on inputs chosen for the corners of the format.
func TestTableReaderMatchesExpfmt(t *testing.T) {
	inputs := map[string]string{}
	for _, f := range []string{"vllm.txt", "vllm_v0.txt", "sglang.txt", "tgi.txt", "llamacpp.txt", "triton_trtllm.txt", "trtllm_serve.txt"} {
		inputs[f] = string(readFixture(t, f))
	}
	for name, body := range map[string]string{
		"blanks and trailing comma":  "vllm:num_requests_running { model_name = \"m\" , engine=\"0\", } 3\n",
		"escapes":                    "vllm:num_requests_running{model_name=\"a\\\"b\\\\c\\nd\"} 1\n",
		"timestamps":                 "vllm:num_requests_waiting{model_name=\"m\"} 2 1712345678000\n",
		"special values":             "vllm:num_requests_running{a=\"1\"} NaN\nvllm:num_requests_running{a=\"2\"} +Inf\nvllm:num_requests_running{a=\"3\"} -Inf\nvllm:num_requests_running{a=\"4\"} 1e3\n",
		"untyped then typed":         "vllm:prompt_tokens_total 5\n# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total 6\n",
		"float histogram counts":     "# TYPE vllm:e2e_request_latency_seconds histogram\nvllm:e2e_request_latency_seconds_bucket{le=\"1\"} 1.5\nvllm:e2e_request_latency_seconds_bucket{le=\"+Inf\"} 2\nvllm:e2e_request_latency_seconds_count 2\nvllm:e2e_request_latency_seconds_sum 3\n",
		"labels out of order":        "# TYPE vllm:time_to_first_token_seconds histogram\nvllm:time_to_first_token_seconds_bucket{b=\"1\",le=\"1\",a=\"2\"} 1\nvllm:time_to_first_token_seconds_bucket{a=\"2\",le=\"+Inf\",b=\"1\"} 1\nvllm:time_to_first_token_seconds_count{b=\"1\",a=\"2\"} 1\n",
		"summary in a table family":  "# TYPE tgi_request_duration summary\ntgi_request_duration{quantile=\"0.5\"} 1\ntgi_request_duration_sum 4\ntgi_request_duration_count 2\n",
		"histogram suffix as family": "# TYPE tgi_request_duration_count gauge\ntgi_request_duration_count 3\n",
		"quoted label name":          "vllm:num_requests_running{\"model.name\"=\"m\"} 1\n",
		"mixed case type":            "# TYPE vllm:num_requests_running GAUGE\nvllm:num_requests_running 1\n",
	} {
		inputs[name] = body
	}
	for name, body := range inputs {
		t.Run(name, func(t *testing.T) {
			table, ref, err := readBoth([]byte(body), false)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(table) == 0 {
				t.Fatal("nothing read")
			}
			if err := sameFamilies(table, ref); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestTableReaderRejects: what expfmt refuses, the table reader refuses too.
func TestTableReaderRejects(t *testing.T) {
	for name, body := range map[string]string{
		"bad escape":           "vllm:num_requests_running{model_name=\"\\x\"} 1\n",
		"duplicate label":      "vllm:num_requests_running{a=\"1\",a=\"2\"} 1\n",
		"reserved label":       "vllm:num_requests_running{__name__=\"x\"} 1\n",
		"no equals":            "vllm:num_requests_running{a \"1\"} 1\n",
		"unquoted value":       "vllm:num_requests_running{a=1} 1\n",
		"hex value":            "vllm:num_requests_running 0x1p3\n",
		"underscore value":     "vllm:num_requests_running 1_000\n",
		"bad timestamp":        "vllm:num_requests_running 1 soon\n",
		"trailing garbage":     "vllm:num_requests_running 1 17 18\n",
		"unknown type":         "# TYPE vllm:num_requests_running thermometer\n",
		"second type":          "# TYPE vllm:num_requests_running gauge\n# TYPE vllm:num_requests_running gauge\n",
		"negative bucket":      "# TYPE vllm:queue histogram\n# TYPE vllm:request_queue_time_seconds histogram\nvllm:request_queue_time_seconds_bucket{le=\"1\"} -1\n",
		"bad le":               "# TYPE vllm:request_queue_time_seconds histogram\nvllm:request_queue_time_seconds_bucket{le=\"soon\"} 1\n",
		"invalid utf-8 value":  "vllm:num_requests_running{a=\"\xff\"} 1\n",
		"text after label set": "vllm:num_requests_running{a=\"1\"}x 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := expfmt.NewTextParser(model.UTF8Validation)
			if _, err := p.TextToMetricFamilies(strings.NewReader(body)); err == nil {
				t.Fatalf("expfmt accepts %q: not a rejection case", body)
			}
			sel, _ := newSelection(engines, nil)
			err := prepare(&bytes.Buffer{}, []byte(body), false, sel, make([]int, len(engines)), newTableReader())
			if err == nil {
				t.Errorf("accepted %q", body)
			}
		})
	}
}

// TestOpenMetricsMatchesExpfmt: translating OpenMetrics to text and reading that gives what
// expfmt's own (slow) OpenMetrics decoder gives, for every family of the fixtures.
func TestOpenMetricsMatchesExpfmt(t *testing.T) {
	for _, f := range []string{"vllm.om", "sglang.om"} {
		t.Run(f, func(t *testing.T) {
			body := readFixture(t, f)
			table, viaText, err := readBoth(body, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameFamilies(table, viaText); err != nil {
				t.Error(err)
			}
			dec := expfmt.NewDecoder(bytes.NewReader(body), expfmt.FmtOpenMetrics_1_0_0)
			ref := map[string]*dto.MetricFamily{}
			for {
				mf := &dto.MetricFamily{}
				if err := dec.Decode(mf); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("expfmt rejects the fixture as OpenMetrics: %v", err)
				}
				ref[mf.GetName()] = mf
			}
			if len(ref) != len(viaText) {
				t.Errorf("%d families via text, %d from expfmt's OpenMetrics decoder", len(viaText), len(ref))
			}
			for name, want := range ref {
				got, ok := viaText[name]
				if !ok {
					t.Errorf("family %q missing after translation", name)
					continue
				}
				if got.GetType() != want.GetType() || !slices.Equal(canonical(got), canonical(want)) {
					t.Errorf("family %q:\n got %s %q\nwant %s %q", name, got.GetType(), canonical(got), want.GetType(), canonical(want))
				}
			}
		})
	}
}

// TestOpenMetricsTranslation covers the OpenMetrics types text lacks.
func TestOpenMetricsTranslation(t *testing.T) {
	body := "# TYPE build info\nbuild_info{version=\"1\"} 1\n" +
		"# TYPE mode stateset\nmode{mode=\"a\"} 1\n" +
		"# TYPE thing unknown\nthing 3\n" +
		"# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 4\nq_gcount 4\nq_gsum 9\n" +
		"# TYPE c counter\n# UNIT c seconds\nc_total 2 1.5 # {a=\"b\"} 1\nc_created 1.7e9\n" +
		"# EOF\n"
	sel, _ := newSelection(nil, []string{".*"})
	var dst bytes.Buffer
	if err := prepare(&dst, []byte(body), true, sel, make([]int, len(engines)), newTableReader()); err != nil {
		t.Fatal(err)
	}
	want := "# TYPE build_info gauge\nbuild_info{version=\"1\"} 1\n" +
		"# TYPE mode gauge\nmode{mode=\"a\"} 1\n" +
		"# TYPE thing untyped\nthing 3\n" +
		"# TYPE q histogram\nq_bucket{le=\"+Inf\"} 4\nq_count 4\nq_sum 9\n" +
		"# TYPE c_total counter\nc_total 2\n"
	if dst.String() != want {
		t.Errorf("translated:\n%s\nwant:\n%s", dst.String(), want)
	}
}
