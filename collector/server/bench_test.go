package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/inferprobe/inferprobe/config"
)

const fixtureModel = "meta-llama/Llama-3.1-8B-Instruct"

var leLabel = regexp.MustCompile(`,?le="[^"]*"`)

// growExposition turns the vLLM fixture into an exposition of about `series` sample lines by
// serving each model-labelled series under more model names (a server with many models, or a
// long tail of label values). Families and each series' lines stay contiguous, so the result is
// valid text or OpenMetrics like the fixture it comes from. It returns the body and its number
// of sample lines.
func growExposition(fixture []byte, series int) ([]byte, int) {
	type block struct {
		comments []string
		series   [][]string // lines of one series (histogram buckets, count, sum, created)
	}
	var blocks []*block
	var cur *block
	perModel, fixed := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(string(fixture), "\n"), "\n") {
		if strings.HasPrefix(l, "#") {
			if cur == nil || len(cur.series) > 0 {
				cur = &block{}
				blocks = append(blocks, cur)
			}
			cur.comments = append(cur.comments, l)
			continue
		}
		if strings.Contains(l, fixtureModel) {
			perModel++
		} else {
			fixed++
		}
		key := func(l string) string {
			return leLabel.ReplaceAllString(l[strings.IndexByte(l, '{')+1:strings.IndexByte(l, '}')], "")
		}
		if n := len(cur.series); n > 0 && strings.Contains(l, "{") && strings.Contains(cur.series[n-1][0], "{") && key(cur.series[n-1][0]) == key(l) {
			cur.series[n-1] = append(cur.series[n-1], l)
		} else {
			cur.series = append(cur.series, []string{l})
		}
	}
	models := max(1, (series-fixed)/perModel)
	var b bytes.Buffer
	lines := 0
	for _, bl := range blocks {
		for _, c := range bl.comments {
			b.WriteString(c + "\n")
		}
		for i := range models {
			for _, s := range bl.series {
				if !strings.Contains(s[0], fixtureModel) && i > 0 {
					continue
				}
				for _, l := range s {
					b.WriteString(strings.ReplaceAll(l, fixtureModel, fmt.Sprintf("org/model-%03d", i)) + "\n")
					lines++
				}
			}
		}
	}
	return b.Bytes(), lines
}

// BenchmarkScrape measures one scrape (HTTP on loopback, parse, normalise, publish) of a
// 2,000-series vLLM-sized exposition, in the text format and in the OpenMetrics form vLLM
// answers inferprobe's Accept header with. Budget: 5 ms and 2 MiB per scrape.
func BenchmarkScrape(b *testing.B) {
	for _, bc := range []struct {
		name, fixture, contentType string
	}{
		{"vllm-2000-text", "vllm.txt", ctText},
		{"vllm-2000-openmetrics", "vllm.om", ctOM},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body, lines := growExposition(readFixture(b, bc.fixture), 2000)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", bc.contentType)
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			s, err := NewScraper(Options{Target: "bench", Config: config.Metrics{
				URL: srv.URL, Interval: time.Minute, Timeout: 5 * time.Second, Engine: EngineAuto,
			}})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Scrape(b.Context()); err != nil {
				b.Fatal(err)
			}
			if n := count(b, s, MetricRequestsRunning); n < 10 {
				b.Fatalf("only %d models normalised: the exposition did not grow as meant", n)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Scrape(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(lines), "series")
		})
	}
}
