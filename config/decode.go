package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the YAML nodes one parse visits, counting every expansion of an alias, so
// that an alias bomb ("billion laughs") fails fast instead of eating memory. Real
// configurations use a few thousand at most.
const maxNodes = 100_000

// position is where a field appears in the YAML source.
type position struct{ line, col int }

// meta is what the decoder learnt about the source besides the values: where each field is,
// which fields were given a value, and which could not be decoded. Paths are the same strings
// that errors show, e.g. "targets[0].traffic.rate".
type meta struct {
	pos    map[string]position // every field present in the file (the key's position)
	set    map[string]bool     // fields present with a non-null value that decoded cleanly
	failed map[string]bool     // fields whose value could not be decoded (already reported)
}

func newMeta() *meta {
	return &meta{pos: map[string]position{}, set: map[string]bool{}, failed: map[string]bool{}}
}

// decoder walks a yaml.Node tree against a Go type by reflection. Doing this by hand rather
// than with yaml's own Decode gives, in one pass: unknown-field detection with suggestions,
// type errors that name the field path, every error rather than the first, and the path→line
// map that validation errors need.
type decoder struct {
	m      *meta
	errs   Errors
	nodes  int
	active map[*yaml.Node]bool // aliases being expanded, to catch an anchor that contains itself
	over   bool                // the node budget ran out; stop reporting further errors
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	tokensType   = reflect.TypeOf(Tokens{})
)

// decodeDocument parses data as one YAML document into cfg, recording positions in m. usable
// is false when nothing worth validating was decoded (not YAML, empty, too large); otherwise
// the errors concern single fields and validation of the rest can go on.
func decodeDocument(data []byte, cfg *Config, m *meta) (errs Errors, usable bool) {
	root, errs := parseYAML(data)
	if errs != nil {
		return errs, false
	}
	m.pos[""] = position{root.Line, root.Column}
	d := &decoder{m: m, active: map[*yaml.Node]bool{}}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", "the configuration must be a mapping with a targets list, not %s", kindName(root))
		return d.errs, false
	}
	d.value(root, reflect.ValueOf(cfg).Elem(), "")
	return d.errs, !d.over
}

// yamlLine pulls the line number out of the yaml package's syntax errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses exactly one YAML document and returns its root node.
func parseYAML(data []byte) (*yaml.Node, Errors) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) || (err == nil && (len(doc.Content) == 0 || isNull(doc.Content[0]))) {
		return nil, Errors{{Msg: "configuration is empty: it needs a targets list with at least one target"}}
	}
	if err != nil {
		return nil, Errors{syntaxError(err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, Errors{syntaxError(err)}
	default:
		return nil, Errors{{Line: next.Line, Column: next.Column,
			Msg: "a second YAML document (---) follows the first; put every target in one document"}}
	}
	return doc.Content[0], nil
}

func syntaxError(err error) *FieldError {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	return &FieldError{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// result says what value decoded into a field.
type result int

const (
	decoded result = iota // a value was stored
	null                  // the YAML value was null: the field keeps its zero value (unset)
	failed                // an error was reported and the field keeps its zero value
)

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	if d.over {
		return
	}
	d.m.failed[path] = true
	e := &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// resolve follows an alias to its anchored node, counting nodes against the budget. It
// returns nil when the alias is cyclic or the budget is spent; the error is reported.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	d.nodes++
	if d.nodes > maxNodes {
		if !d.over {
			d.errorf(n, path, "configuration too large: more than %d YAML nodes once aliases are expanded", maxNodes)
			d.over = true
		}
		return nil
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil || d.active[n] {
			d.errorf(n, path, "alias *%s refers to a node that contains it", n.Value)
			return nil
		}
		n = n.Alias
	}
	return n
}

// enter marks an alias as being expanded until the returned function runs.
func (d *decoder) enter(n *yaml.Node) func() {
	if n.Kind != yaml.AliasNode {
		return func() {}
	}
	d.active[n] = true
	return func() { delete(d.active, n) }
}

// value decodes n into v, which is addressable.
func (d *decoder) value(orig *yaml.Node, v reflect.Value, path string) result {
	n := d.resolve(orig, path)
	if n == nil {
		return failed
	}
	defer d.enter(orig)()
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		d.errorf(n, path, "unsupported YAML tag %s", n.Tag)
		return failed
	}
	if isNull(n) {
		// A present but empty block such as "metrics:" still switches that block on.
		if v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct && v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return null
	}

	t := v.Type()
	switch {
	case t == durationType:
		return d.duration(n, v, path)
	case t == tokensType:
		return d.tokens(n, v, path)
	case t.Kind() == reflect.Pointer:
		elem := reflect.New(t.Elem())
		r := d.value(n, elem.Elem(), path)
		if r == decoded || t.Elem().Kind() == reflect.Struct {
			v.Set(elem)
		}
		return r
	case t.Kind() == reflect.Struct:
		return d.structure(n, v, path)
	case t.Kind() == reflect.Slice:
		return d.sequence(n, v, path)
	case t.Kind() == reflect.Map:
		return d.mapping(n, v, path)
	case t.Kind() == reflect.Interface:
		x, ok := d.anyValue(n, path)
		if !ok {
			return failed
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return decoded
	default:
		return d.scalar(n, v, path)
	}
}

// kindName names what a node is, for "must be X, not Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value " + quote(n.Value)
	}
}

func isQuoted(n *yaml.Node) bool {
	return n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) result {
	want := map[reflect.Kind]string{
		reflect.String: "a string", reflect.Bool: "true or false",
		reflect.Float64: "a number", reflect.Float32: "a number",
	}[v.Kind()]
	if want == "" {
		want = "an integer"
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be %s, not %s", want, kindName(n))
		return failed
	}
	tag := n.ShortTag()
	hint := ""
	if isQuoted(n) {
		hint = " (it is quoted, so YAML reads it as a string)"
	}
	switch v.Kind() {
	case reflect.String:
		if tag == "!!binary" {
			d.errorf(n, path, "must be a plain string, not !!binary")
			return failed
		}
		v.SetString(n.Value)
		return decoded
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, path, "cannot parse %s as a boolean: use true or false%s", quote(n.Value), hint)
			return failed
		}
		v.SetBool(b)
		return decoded
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.errorf(n, path, "cannot parse %s as a number%s", quote(n.Value), hint)
			return failed
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, "must be a finite number, not %s", n.Value)
			return failed
		}
		v.SetFloat(f)
		return decoded
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag == "!!float" && strings.Trim(n.Value, "+-0123456789") == "" {
			// YAML resolves an integer too large for int64 as a float.
			d.errorf(n, path, "integer %s is out of range", n.Value)
			return failed
		}
		if tag != "!!int" {
			d.errorf(n, path, "cannot parse %s as an integer%s", quote(n.Value), hint)
			return failed
		}
		if n.Decode(&i) != nil || v.OverflowInt(i) {
			d.errorf(n, path, "integer %s is out of range", n.Value)
			return failed
		}
		v.SetInt(i)
		return decoded
	}
	// Unreachable with the schema in config.go; a new field type must be handled above.
	d.errorf(n, path, "internal error: no decoder for Go type %s", v.Type())
	return failed
}

// tokens decodes a Tokens: a number, or a mapping that is a LengthDist.
func (d *decoder) tokens(n *yaml.Node, v reflect.Value, path string) result {
	switch n.Kind {
	case yaml.MappingNode:
		dist := reflect.New(reflect.TypeOf(LengthDist{}))
		r := d.structure(n, dist.Elem(), path)
		v.FieldByName("Dist").Set(dist)
		return r
	case yaml.SequenceNode:
		d.errorf(n, path, "must be a number of tokens or a distribution such as {dist: normal, mean: 512, stddev: 128}, not a list")
		return failed
	}
	return d.scalar(n, v.FieldByName("N"), path)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) result {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "must be a duration such as \"30s\", not %s", kindName(n))
		return failed
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
			d.errorf(n, path, "cannot parse %s as a duration: add a unit, e.g. \"%ss\" or \"%sms\"", n.Value, n.Value, n.Value)
		} else {
			d.errorf(n, path, "cannot parse %s as a duration: use a Go duration such as \"500ms\", \"30s\", \"5m\" or \"1h30m\"", quote(n.Value))
		}
		return failed
	}
	if dur < 0 {
		d.errorf(n, path, "must not be negative")
		return failed
	}
	v.SetInt(int64(dur))
	return decoded
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) result {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "must be a list, not %s", kindName(n))
		return failed
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.m.pos[p] = position{item.Line, item.Column}
		// Keep every element, even one that failed, so that targets[i] in later
		// (validation) errors is the i-th item of the file.
		e := reflect.New(v.Type().Elem()).Elem()
		if d.value(item, e, p) == decoded {
			d.m.set[p] = true
		}
		out = reflect.Append(out, e)
	}
	v.Set(out)
	return decoded
}

// entry is one key/value pair of a mapping, after merge keys (<<) are expanded.
type entry struct{ key, val *yaml.Node }

// entries lists a mapping's pairs: its own keys (reporting duplicates, which YAML forbids),
// then keys brought in by merge keys ("<<: *defaults") that the mapping does not set itself.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	var own, merged []entry
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i], path)
		if k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "a key must be a plain string, not %s", kindName(k))
			continue
		}
		val := n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), "duplicate key (first given on line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, entry{k, val})
	}
	for _, e := range merged {
		if _, ok := seen[e.key.Value]; !ok {
			seen[e.key.Value] = e.key
			own = append(own, e)
		}
	}
	return own
}

// mergeSources expands the value of a merge key: a mapping or a list of mappings, where
// earlier mappings win, as YAML's merge key type specifies.
func (d *decoder) mergeSources(orig *yaml.Node, path string) []entry {
	n := d.resolve(orig, path)
	if n == nil {
		return nil
	}
	defer d.enter(orig)()
	switch n.Kind {
	case yaml.MappingNode:
		return d.entries(n, path)
	case yaml.SequenceNode:
		var out []entry
		for _, item := range n.Content {
			in := d.resolve(item, path)
			if in == nil {
				continue
			}
			if in.Kind != yaml.MappingNode {
				d.errorf(in, path, "a merge key (<<) list may only hold mappings, not %s", kindName(in))
				continue
			}
			leave := d.enter(item)
			out = append(out, d.entries(in, path)...)
			leave()
		}
		return out
	default:
		d.errorf(n, path, "a merge key (<<) needs a mapping or a list of mappings, not %s", kindName(n))
		return nil
	}
}

// plainKey matches keys that read fine unquoted in a path.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends a key to a field path, quoting keys that would make the path ambiguous.
func joinPath(path, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// field is one YAML-visible field of a struct.
type field struct {
	name  string
	index int
	typ   reflect.Type
}

func yamlFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, i, f.Type})
	}
	return out
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) result {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping (key: value lines), not %s", kindName(n))
		return failed
	}
	fields := yamlFields(v.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	for _, e := range d.entries(n, path) {
		p := joinPath(path, e.key.Value)
		f, ok := byName[e.key.Value]
		if !ok && path == "" && strings.HasPrefix(e.key.Value, "x-") {
			// Top-level x-* keys are free-form, as in Compose files: a place for anchors
			// (&defaults) that targets then merge with "<<: *defaults".
			continue
		}
		if !ok {
			d.errorf(e.key, p, "unknown field%s", suggest(e.key.Value, fields))
			continue
		}
		d.m.pos[p] = position{e.key.Line, e.key.Column}
		if d.value(e.val, v.Field(f.index), p) == decoded {
			d.m.set[p] = true
		}
	}
	return decoded
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) result {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "must be a mapping (key: value lines), not %s", kindName(n))
		return failed
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.errorf(n, path, "internal error: map key type %s", t.Key())
		return failed
	}
	out := reflect.MakeMap(t)
	for _, e := range d.entries(n, path) {
		p := joinPath(path, e.key.Value)
		if e.key.ShortTag() != "!!str" {
			d.errorf(e.key, p, "key %s must be a string (quote it)", e.key.Value)
			continue
		}
		d.m.pos[p] = position{e.key.Line, e.key.Column}
		val := reflect.New(t.Elem()).Elem()
		switch d.value(e.val, val, p) {
		case decoded, null:
			d.m.set[p] = true
			out.SetMapIndex(reflect.ValueOf(e.key.Value).Convert(t.Key()), val)
		}
	}
	v.Set(out)
	return decoded
}

// anyValue converts free-form YAML (extra_body) into values encoding/json can marshal: string
// keys only, finite numbers, and no YAML-only types.
func (d *decoder) anyValue(orig *yaml.Node, path string) (any, bool) {
	n := d.resolve(orig, path)
	if n == nil {
		return nil, false
	}
	defer d.enter(orig)()
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		d.errorf(n, path, "unsupported YAML tag %s", n.Tag)
		return nil, false
	}
	switch n.Kind {
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for i, item := range n.Content {
			x, good := d.anyValue(item, fmt.Sprintf("%s[%d]", path, i))
			ok = ok && good
			out = append(out, x)
		}
		return out, ok
	case yaml.MappingNode:
		out := map[string]any{}
		ok := true
		for _, e := range d.entries(n, path) {
			p := joinPath(path, e.key.Value)
			if e.key.ShortTag() != "!!str" {
				d.errorf(e.key, p, "key %s must be a string (quote it): JSON object keys are strings", e.key.Value)
				ok = false
				continue
			}
			d.m.pos[p] = position{e.key.Line, e.key.Column}
			x, good := d.anyValue(e.val, p)
			ok = ok && good
			out[e.key.Value] = x
		}
		return out, ok
	}
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n, path, "cannot parse %s as a boolean", quote(n.Value))
			return nil, false
		}
		return b, true
	case "!!int":
		var i int64
		if err := n.Decode(&i); err == nil {
			return i, true
		}
		var u uint64
		if err := n.Decode(&u); err == nil {
			return u, true
		}
		d.errorf(n, path, "integer %s is out of range", n.Value)
		return nil, false
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			d.errorf(n, path, "cannot parse %s as a number", quote(n.Value))
			return nil, false
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, "must be a finite number: JSON has no %s", n.Value)
			return nil, false
		}
		return f, true
	case "!!str", "!!timestamp":
		// A date-like plain scalar stays the text that was written.
		return n.Value, true
	default:
		d.errorf(n, path, "unsupported YAML type %s: use a string, number, boolean, list or mapping", n.ShortTag())
		return nil, false
	}
}

// suggest proposes the field the user probably meant: a sibling spelled alike, or a field of
// a nested block given one level too high (e.g. "rate" directly under a target).
func suggest(key string, fields []field) string {
	nk := normalize(key)
	for _, f := range fields {
		if normalize(f.name) == nk {
			return fmt.Sprintf(" (did you mean %q?)", f.name)
		}
	}
	for _, f := range fields {
		t := f.typ
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType {
			continue
		}
		for _, sub := range yamlFields(t) {
			if normalize(sub.name) == nk {
				return fmt.Sprintf(" (did you mean %q? it belongs under %s:)", f.name+"."+sub.name, f.name)
			}
		}
	}
	if nk == "apikey" || nk == "token" || nk == "authorization" || nk == "bearertoken" {
		return " (the API key is never written in the config: set api_key_file or api_key_env)"
	}
	// Allow one typo in a short key, two in a longer one.
	best, bestDist := "", 2
	if len(nk) > 5 {
		bestDist = 3
	}
	for _, f := range fields {
		if dist := editDistance(nk, normalize(f.name)); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// normalize folds case and drops separators, so that maxTokens, max-tokens and MAX_TOKENS
// all match max_tokens.
func normalize(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("_", "", "-", "", " ", "").Replace(s)
}

// editDistance is the optimal-string-alignment distance between two short strings: the
// Levenshtein distance where swapping two adjacent letters ("modle") also counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
