// Package metricdocs reads the metric tables of docs/metrics.md, so tests can hold what is
// exposed to what is documented.
package metricdocs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Metric is one documented series family.
type Metric struct {
	// Type is counter, gauge, histogram or info.
	Type string
	// Labels are the documented label names that every series has, sorted.
	Labels []string
	// Optional are label names written with a trailing "?": present only where the source
	// has them (e.g. a server's model_name).
	Optional []string
}

// Allows reports whether a series with these label names fits the documented row.
func (m Metric) Allows(labels []string) bool {
	for _, l := range m.Labels {
		if !slices.Contains(labels, l) {
			return false
		}
	}
	for _, l := range labels {
		if !slices.Contains(m.Labels, l) && !slices.Contains(m.Optional, l) {
			return false
		}
	}
	return true
}

// row matches "| `name` | type | labels | definition |".
var row = regexp.MustCompile("^\\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \\| (counter|gauge|histogram|info) \\|\\s*([a-z_, ?]*?)\\s*\\|")

// Parse reads every metric row of a markdown document.
func Parse(r io.Reader) (map[string]Metric, error) {
	docs := map[string]Metric{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var labels, optional []string
		for _, l := range strings.Split(m[3], ",") {
			l = strings.TrimSpace(l)
			switch {
			case l == "":
			case strings.HasSuffix(l, "?"):
				optional = append(optional, strings.TrimSuffix(l, "?"))
			default:
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		if _, dup := docs[m[1]]; dup {
			return nil, fmt.Errorf("%s is documented twice", m[1])
		}
		docs[m[1]] = Metric{Type: m[2], Labels: labels, Optional: optional}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no metric rows found")
	}
	return docs, nil
}

// ParseFile reads the metric tables of a markdown file.
func ParseFile(path string) (map[string]Metric, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	docs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return docs, nil
}

// Check holds exposed families to the documentation: every family whose name starts with
// prefix must be documented with its type, and every series must carry the documented labels.
// It returns one problem per line of text; none means they agree.
func Check(docs map[string]Metric, families []*dto.MetricFamily, prefix string) []string {
	var problems []string
	for _, mf := range families {
		name := mf.GetName()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		doc, ok := docs[name]
		if !ok {
			problems = append(problems, name+" is exposed but not documented")
			continue
		}
		if got := strings.ToLower(mf.GetType().String()); got != doc.Type {
			problems = append(problems, fmt.Sprintf("%s: type %s, documented %s", name, got, doc.Type))
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName())
			}
			slices.Sort(labels)
			if !doc.Allows(labels) {
				problems = append(problems, fmt.Sprintf("%s: labels %v, documented %v (optional %v)", name, labels, doc.Labels, doc.Optional))
				break
			}
		}
	}
	return problems
}
