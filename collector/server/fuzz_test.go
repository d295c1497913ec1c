package server

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// fuzzFormats are the formats a fuzz input is read as, indexed by the input's format byte.
var fuzzFormats = []expfmt.Format{expfmt.FmtText, expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtProtoDelim}

// FuzzParseNormalise feeds arbitrary bytes, as each format, through the parse and normalise path
// with passthrough of everything. It must never panic; what it accepts must gather without error
// (so a model server can never break a scrape of inferprobe); and for text, the table reader must
// agree with expfmt on every family both read.
func FuzzParseNormalise(f *testing.F) {
	for _, name := range []string{"vllm.txt", "vllm_v0.txt", "sglang.txt", "tgi.txt", "llamacpp.txt", "triton_trtllm.txt", "trtllm_serve.txt"} {
		body := readFixture(f, name)
		f.Add(body, uint8(0))
		f.Add(toProto(f, body), uint8(2))
	}
	f.Add(readFixture(f, "vllm.om"), uint8(1))
	f.Add(readFixture(f, "sglang.om"), uint8(1))
	f.Add([]byte("# TYPE x histogram\nx_bucket{le=\"1\"} 1\nx_count 1\nx_sum 1\n"), uint8(0))
	f.Add([]byte("vllm:lora_requests_info{running_lora_adapters=\"a,b\"} 1\n"), uint8(0))
	f.Add([]byte("# TYPE c counter\nc_total 1 # {a=\"b\"} 1\n# EOF\n"), uint8(1))

	f.Fuzz(func(t *testing.T, body []byte, format uint8) {
		fmtv := fuzzFormats[int(format)%len(fuzzFormats)]
		c := NewCollector()
		for _, target := range []string{"t", "t2"} { // two targets exposing the same families
			s := newTestScraper(t, "http://127.0.0.1:1/metrics", func(o *Options) {
				o.Target = target
				o.Config.Passthrough = []string{".*"}
			})
			if !ingest(t, s, body, fmtv) {
				return
			}
			c.Add(s)
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("gather failed: %v", err)
		}
	})
}

// ingest runs body through what a successful scrape does after the fetch, and reports whether
// it was accepted. For text it also holds the table reader to expfmt.
func ingest(t *testing.T, s *Scraper, body []byte, format expfmt.Format) bool {
	s.body.Reset()
	s.body.Write(body)
	clear(s.hits)
	table, raw, err := s.parse(format)
	if err != nil {
		return false
	}
	if format.FormatType() == expfmt.TypeTextPlain {
		if err := sameFamilies(table, raw); err != nil {
			t.Fatalf("table reader and expfmt disagree: %v", err)
		}
	}
	spec := s.engineFor()
	res := s.norm.normalise(table, raw, spec, s.rs.scratch())
	s.rs.succeeded(res.startTime, res.haveStartTime, res.counters)
	s.up, s.scraped = true, true
	s.publish(0.001, spec.name, &res)
	return true
}
