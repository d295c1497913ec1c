package server

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
)

// One pass over the exposition, before any parsing, routes each line: the families the table,
// LoRA and restart detection read go to the tableReader, passthrough families go to expfmt's
// text parser, and everything else (most of a vLLM exposition: histograms nobody normalises) is
// only checked for shape, so a truncated or garbled exposition still fails as a whole, as it
// would for Prometheus. The same pass turns OpenMetrics into the text format, because expfmt's
// OpenMetrics decoder (v0.73, grammar-driven) was measured at about 4 s and 3 GB for 2,000
// lines, which no sidecar can afford every 15 s.

// maxPassthroughCache bounds the memory of passthrough decisions kept between scrapes; a server
// that invents names forever only makes inferprobe re-run the regexes.
const maxPassthroughCache = 4096

// selection is what one scraper reads from an exposition.
type selection struct {
	// families are the exact family names the table rows, LoRA and restart detection use.
	families map[string]struct{}
	// passthrough patterns are anchored: they must match the whole family name.
	passthrough []*regexp.Regexp
	// cache remembers passthrough decisions per name; only the scrape goroutine touches it.
	cache map[string]bool
}

// newSelection gathers the families the given engines use (all of them in auto mode).
func newSelection(specs []engineSpec, passthrough []string) (*selection, error) {
	sel := &selection{families: map[string]struct{}{processStartTimeFamily: {}}, cache: map[string]bool{}}
	for _, e := range specs {
		for _, r := range table {
			for _, src := range r.from[e.name] {
				sel.families[src.family] = struct{}{}
				if src.per != nil {
					sel.families[src.per.family] = struct{}{}
				}
			}
		}
		if e.lora != nil {
			sel.families[e.lora.family] = struct{}{}
		}
	}
	for _, p := range passthrough {
		re, err := regexp.Compile("^(?:" + p + ")$")
		if err != nil {
			return nil, fmt.Errorf("metrics.passthrough %q: %w", p, err)
		}
		sel.passthrough = append(sel.passthrough, re)
	}
	return sel, nil
}

// passes reports whether a family is re-exposed raw.
func (sel *selection) passes(name []byte) bool {
	if len(sel.passthrough) == 0 {
		return false
	}
	if v, ok := sel.cache[string(name)]; ok {
		return v
	}
	s := string(name)
	match := false
	for _, re := range sel.passthrough {
		if re.MatchString(s) {
			match = true
			break
		}
	}
	if len(sel.cache) >= maxPassthroughCache {
		clear(sel.cache)
	}
	sel.cache[s] = match
	return match
}

// classify reports whether a sample or family name belongs to a family the table reads, and
// whether to a passthrough family. A sample name may carry a histogram or summary suffix, so
// the name without it is tried too.
func (sel *selection) classify(name []byte) (table, pass bool) {
	table, pass = sel.familyClass(name)
	for _, suffix := range [...]string{"_bucket", "_count", "_sum"} {
		if table && pass {
			break
		}
		if base, ok := cutSuffix(name, suffix); ok {
			t, p := sel.familyClass(base)
			table, pass = table || t, pass || p
		}
	}
	return table, pass
}

func (sel *selection) familyClass(name []byte) (table, pass bool) {
	_, table = sel.families[string(name)]
	return table, sel.passes(name)
}

// errTruncated marks an exposition that stops in the middle of a line or before # EOF.
var errTruncated = errors.New("exposition truncated")

// prepare routes the lines of body: those of table families to tr, those of passthrough
// families to dst (in the text format, for expfmt). It counts per engine the samples that carry
// its prefix (hits is indexed like engines). With openMetrics set, body is OpenMetrics 1.0 and
// is translated: counters get their _total family name back; _created samples, exemplars,
// timestamps, HELP and UNIT lines are dropped; the types text lacks become their nearest text
// type. Errors name the line.
func prepare(dst *bytes.Buffer, body []byte, openMetrics bool, sel *selection, hits []int, tr *tableReader) error {
	var (
		famName []byte // OpenMetrics: the family of the last TYPE line
		famType []byte
		sawEOF  bool
		// Consecutive samples usually share a name (a histogram's buckets), so the last decision
		// is remembered.
		lastName            []byte
		lastTable, lastPass bool
	)
	classify := func(name []byte) (bool, bool) {
		if lastName == nil || string(name) != string(lastName) {
			lastName = name
			lastTable, lastPass = sel.classify(name)
		}
		return lastTable, lastPass
	}
	for lineNo := 1; len(body) > 0; lineNo++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
			if !openMetrics && len(bytes.TrimLeft(line, " \t")) > 0 && line[0] != '#' {
				return fmt.Errorf("line %d: %w: no final newline", lineNo, errTruncated)
			}
		}
		if sawEOF {
			if len(line) > 0 {
				return fmt.Errorf("line %d: content after # EOF", lineNo)
			}
			continue
		}
		if !openMetrics {
			line = bytes.TrimLeft(line, " \t")
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == '#' {
			if openMetrics && string(line) == "# EOF" {
				sawEOF = true
				continue
			}
			name, typ, ok := typeLine(line)
			if !ok {
				continue // HELP, UNIT and free comments are not needed
			}
			if openMetrics {
				famName, famType = name, typ
				textName, textType := omTypeToText(name, typ)
				name, typ = []byte(textName), []byte(textType)
			}
			table, pass := classify(name)
			if table {
				if err := tr.typeLine(name, typ); err != nil {
					return fmt.Errorf("line %d: %w", lineNo, err)
				}
			}
			if pass {
				dst.WriteString("# TYPE ")
				dst.Write(name)
				dst.WriteByte(' ')
				dst.Write(typ)
				dst.WriteByte('\n')
			}
			continue
		}
		s, err := splitSample(line)
		if err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
		for i := range engines {
			if hasPrefix(s.name, engines[i].prefix) {
				hits[i]++
			}
		}
		name, tail := s.name, s.tail
		if openMetrics {
			var keep bool
			if name, keep = omSampleName(s.name, famName, famType); !keep {
				continue
			}
			tail = nil // OpenMetrics timestamps are seconds, exemplars follow: neither is needed
		}
		table, pass := classify(name)
		if table {
			if err := tr.sample(name, s.labels, s.value, tail); err != nil {
				return fmt.Errorf("line %d: %w", lineNo, err)
			}
		}
		if pass {
			dst.Write(name)
			dst.Write(s.labels)
			dst.WriteByte(' ')
			dst.Write(s.value)
			if len(tail) > 0 {
				dst.Write(tail)
			}
			dst.WriteByte('\n')
		}
	}
	if openMetrics && !sawEOF {
		return fmt.Errorf("%w: no # EOF", errTruncated)
	}
	return nil
}

// typeLine parses "# TYPE name type" (with any run of blanks, as the text format allows); the
// type is the rest of the line, so "gauge extra" is an unknown type, as for expfmt.
func typeLine(line []byte) (name, typ []byte, ok bool) {
	rest := bytes.TrimLeft(line[1:], " \t")
	i := bytes.IndexAny(rest, " \t")
	if i < 0 || string(rest[:i]) != "TYPE" {
		return nil, nil, false
	}
	rest = bytes.TrimLeft(rest[i:], " \t")
	j := bytes.IndexAny(rest, " \t")
	if j < 0 {
		return nil, nil, false
	}
	return rest[:j], bytes.Trim(rest[j:], " \t"), true
}

// omTypeToText maps an OpenMetrics family to the text-format family expfmt will build.
func omTypeToText(name, typ []byte) (string, string) {
	switch string(typ) {
	case "counter":
		return string(name) + "_total", "counter"
	case "info":
		return string(name) + "_info", "gauge"
	case "stateset":
		return string(name), "gauge"
	case "gaugehistogram":
		return string(name), "histogram"
	case "unknown":
		return string(name), "untyped"
	}
	return string(name), string(typ)
}

// omSampleName gives the text-format name of an OpenMetrics sample, or keep=false for a sample
// the text format has no place for (_created). It allocates only to rename gaugehistogram parts.
func omSampleName(name, famName, famType []byte) ([]byte, bool) {
	if len(famName) == 0 || !hasPrefix(name, string(famName)) {
		return name, true
	}
	rest := string(name[len(famName):])
	switch string(famType) {
	case "counter", "histogram", "summary", "gaugehistogram":
		if rest == "_created" {
			return nil, false
		}
	}
	if string(famType) == "gaugehistogram" {
		switch rest {
		case "_gcount":
			return append(bytes.Clone(famName), "_count"...), true
		case "_gsum":
			return append(bytes.Clone(famName), "_sum"...), true
		}
	}
	return name, true
}

// hasPrefix is bytes.HasPrefix for a string prefix, without converting either side.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// cutSuffix is bytes.CutSuffix for a string suffix, without converting either side.
func cutSuffix(b []byte, suffix string) ([]byte, bool) {
	if len(b) < len(suffix) || string(b[len(b)-len(suffix):]) != suffix {
		return b, false
	}
	return b[:len(b)-len(suffix)], true
}

// sample is one exposition line cut into its parts; all fields alias the line.
type sample struct {
	name   []byte
	labels []byte // "{...}" or empty
	value  []byte
	tail   []byte // what follows the value: a timestamp, in OpenMetrics also an exemplar
}

// splitSample cuts "name{labels} value [timestamp] [# exemplar]" and checks its shape, so that
// a line of a family nobody reads still cannot be garbage.
func splitSample(line []byte) (sample, error) {
	var s sample
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	s.name = line[:i]
	if len(s.name) == 0 {
		return s, fmt.Errorf("sample without a metric name: %q", truncateForError(line))
	}
	rest := line[i:]
	if afterBlanks := bytes.TrimLeft(rest, " \t"); len(afterBlanks) > 0 && afterBlanks[0] == '{' {
		rest = afterBlanks // the text format allows blanks between name and labels
	}
	if len(rest) > 0 && rest[0] == '{' {
		end, labels := labelsEnd(rest)
		if end < 0 {
			return s, fmt.Errorf("%w: unterminated label set in %q", errTruncated, truncateForError(line))
		}
		if labels > maxLabelsPerSeries {
			return s, fmt.Errorf("%d labels on one series, more than the limit of %d", labels, maxLabelsPerSeries)
		}
		s.labels, rest = rest[:end], rest[end:]
	}
	trimmed := bytes.TrimLeft(rest, " \t")
	if len(trimmed) == len(rest) || len(trimmed) == 0 {
		return s, fmt.Errorf("%w: no value in %q", errTruncated, truncateForError(line))
	}
	j := 0
	for j < len(trimmed) && trimmed[j] != ' ' && trimmed[j] != '\t' {
		j++
	}
	s.value, s.tail = trimmed[:j], trimmed[j:]
	if !plausibleNumber(s.value) {
		return s, fmt.Errorf("value %q is not a number", truncateForError(s.value))
	}
	return s, nil
}

// maxLabelsPerSeries caps the labels of one sample. Checking label names for duplicates is
// quadratic in expfmt (and cheap only for short sets here), so one hostile line with a million
// labels would otherwise stall the scrape; real series carry a handful.
const maxLabelsPerSeries = 256

// labelsEnd returns the index just past the '}' that closes the label set b starts with, or -1
// if it is not closed, and the number of labels in it.
func labelsEnd(b []byte) (int, int) {
	inQuote := false
	labels := 0
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '=':
			labels++
		case !inQuote && c == '}':
			return i + 1, labels
		}
	}
	return -1, labels
}

// plausibleNumber is a cheap shape check for a sample value; expfmt parses the values it keeps.
func plausibleNumber(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, special := range [...]string{"NaN", "Inf", "+Inf", "-Inf"} {
		if bytes.EqualFold(b, []byte(special)) {
			return true
		}
	}
	for _, c := range b {
		if (c < '0' || c > '9') && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// truncateForError keeps error messages (which reach logs) short.
func truncateForError(b []byte) string {
	const limit = 80
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
