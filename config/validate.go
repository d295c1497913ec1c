package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Limits that catch typos (an extra zero or three) before they turn into an accidental load
// test or a prompt too large to allocate.
const (
	// MaxRate is the highest traffic.rate accepted, in requests per second.
	MaxRate = 100_000
	// MaxTokensLimit is the highest request.max_tokens and request.input_tokens accepted.
	MaxTokensLimit = 1 << 20
)

// Validate checks a Config whose defaults are already applied (by Parse, Load or
// ApplyDefaults, with the same extensions) and returns Errors listing every problem, or nil.
// Errors carry line numbers only when the Config came from Parse or Load, which validate as
// they go.
func (c *Config) Validate(ext ...Extension) error {
	return validate(c, nil, ext).err()
}

// validator collects validation errors, locating each with the positions the decoder found.
type validator struct {
	m        *meta // nil for a Config built in code
	errs     Errors
	warnings []*FieldError
}

// loc is a field path and the position errors about it report: the field's own when it is in
// the file, else its nearest present ancestor's. failed marks a field (or an ancestor of it)
// whose value could not be decoded: that error was reported, and validation errors about the
// zero value left behind would only be noise.
type loc struct {
	path      string
	line, col int
	failed    bool
}

func (v *validator) locate(parent loc, path string) loc {
	l := loc{path: path, line: parent.line, col: parent.col, failed: parent.failed}
	if v.m != nil {
		if p, ok := v.m.pos[path]; ok {
			l.line, l.col = p.line, p.col
		}
		l.failed = l.failed || v.m.failed[path]
	}
	return l
}

func (v *validator) at(parent loc, key string) loc {
	return v.locate(parent, joinPath(parent.path, key))
}

func (v *validator) item(parent loc, i int) loc {
	return v.locate(parent, fmt.Sprintf("%s[%d]", parent.path, i))
}

// given reports whether the file set the field to a (non-null) value; for a Config built in
// code it is always false.
func (v *validator) given(l loc) bool {
	return v.m != nil && v.m.set[l.path]
}

func (v *validator) errorf(l loc, format string, args ...any) {
	if l.failed {
		return
	}
	v.errs = append(v.errs, &FieldError{Path: l.path, Line: l.line, Column: l.col, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning: a setting that is valid but cannot do what it is meant to.
func (v *validator) warnf(l loc, format string, args ...any) {
	if l.failed {
		return
	}
	v.warnings = append(v.warnings, &FieldError{Path: l.path, Line: l.line, Column: l.col, Msg: fmt.Sprintf(format, args...)})
}

func validate(c *Config, m *meta, ext []Extension) Errors {
	v := &validator{m: m}
	root := v.locate(loc{}, "")
	targets := v.at(root, "targets")
	if len(c.Targets) == 0 {
		v.errorf(targets, "at least one target is required")
	}
	v.experiment(c.Experiment, v.at(root, "experiment"))
	v.otel(c.OTel, v.at(root, "otel"))
	v.sweep(c.Sweep, v.at(root, "sweep"))
	names := map[string]loc{}
	var set map[string]bool
	if m != nil {
		set = m.set
	}
	for i := range c.Targets {
		tl := v.item(targets, i)
		v.target(&c.Targets[i], tl, names)
		given := givenFunc(set, i)
		for _, e := range ext {
			e.Check(&c.Targets[i], given, func(field, format string, args ...any) {
				v.errorf(v.nearest(tl, field), format, args...)
			})
		}
	}
	c.Warnings = Errors(v.warnings).sorted()
	return v.errs.sorted()
}

// nearest locates a field given by its path relative to parent, reporting the position of
// the field itself or, when the file does not hold it, of its nearest ancestor that it does.
func (v *validator) nearest(parent loc, field string) loc {
	// field is a path of plain keys and [i] indexes ("traffic.stages[2].rate"), written by
	// code, so it is appended as is.
	full := parent.path + "." + field
	if parent.path == "" {
		full = field
	}
	l := loc{path: full, line: parent.line, col: parent.col, failed: parent.failed}
	if v.m == nil {
		return l
	}
	for p := full; len(p) > len(parent.path); {
		if v.m.failed[p] {
			l.failed = true
		}
		if pos, ok := v.m.pos[p]; ok {
			l.line, l.col = pos.line, pos.col
			break
		}
		cut := strings.LastIndexAny(p, ".[")
		if cut <= 0 {
			break
		}
		p = p[:cut]
	}
	return l
}

func (v *validator) target(t *Target, tl loc, names map[string]loc) {
	name := v.at(tl, "name")
	switch {
	case t.Name == "":
		v.errorf(name, "required")
	case !validName(t.Name):
		v.errorf(name, "%s may only contain letters, digits and _ . : - (it becomes the target label)", quote(t.Name))
	default:
		if first, dup := names[t.Name]; dup {
			v.errorf(name, "duplicate target name %s (also used by %s, line %d)", quote(t.Name), strings.TrimSuffix(first.path, ".name"), first.line)
		} else {
			names[t.Name] = name
		}
	}

	u := v.at(tl, "url")
	urlMsg := checkHTTPURL(t.URL)
	urlOK := urlMsg == ""
	if !urlOK {
		v.errorf(u, "%s", urlMsg)
	}

	path := v.at(tl, "path")
	switch {
	case t.Path == "" && !v.given(path):
		// No default: the API flavour is unknown, and its extension says so.
	case t.Path == "":
		v.errorf(path, "must not be empty (omit it to use the API's default path)")
	case !strings.HasPrefix(t.Path, "/"):
		v.errorf(path, "must start with /")
	case hasControl(t.Path) || strings.ContainsAny(t.Path, " #"):
		v.errorf(path, "must not contain spaces, control characters or a fragment (#)")
	default:
		if _, err := url.ParseRequestURI(t.Path); err != nil {
			v.errorf(path, "is not a valid URL path")
		}
	}
	if urlOK && strings.HasPrefix(t.Path, "/") {
		base, _ := url.Parse(t.URL)
		bp := strings.TrimRight(base.Path, "/")
		switch {
		case strings.HasSuffix(bp, "/completions"):
			v.errorf(u, "must be the server root (e.g. %s://%s): the API path %s is appended to it", base.Scheme, base.Host, t.Path)
		case strings.HasSuffix(bp, "/v1") && strings.HasPrefix(t.Path, "/v1/"):
			v.errorf(u, "ends in /v1 and the API path %s starts with /v1: drop /v1 from the url", t.Path)
		}
	}

	if t.Model == "" {
		v.errorf(v.at(tl, "model"), "required (the model name the server expects, e.g. as listed by GET /v1/models)")
	}

	v.headers(t, tl)

	keyFile, keyEnv := v.at(tl, "api_key_file"), v.at(tl, "api_key_env")
	switch {
	case t.APIKeyFile != "" && t.APIKeyEnv != "":
		v.errorf(keyEnv, "cannot be used together with api_key_file: choose one")
	case t.APIKeyEnv != "" && !validEnvName(t.APIKeyEnv):
		v.errorf(keyEnv, "%s is not an environment variable name (letters, digits and _, not starting with a digit)", quote(t.APIKeyEnv))
	case t.APIKeyFile == "" && v.given(keyFile):
		v.errorf(keyFile, "must not be empty (omit it to send no API key)")
	case t.APIKeyEnv == "" && v.given(keyEnv):
		v.errorf(keyEnv, "must not be empty (omit it to send no API key)")
	}

	timeout := v.at(tl, "timeout")
	v.positive(timeout, t.Timeout)
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"connect_timeout", t.ConnectTimeout}, {"first_byte_timeout", t.FirstByteTimeout}, {"idle_timeout", t.IdleTimeout}} {
		l := v.at(tl, f.name)
		switch {
		case f.d <= 0:
			v.errorf(l, "must be > 0")
		case t.Timeout > 0 && f.d > t.Timeout && !timeout.failed:
			v.errorf(l, "%s must not exceed timeout (%s)", f.d, t.Timeout)
		}
	}
	if t.MaxResponseBytes <= 0 {
		v.errorf(v.at(tl, "max_response_bytes"), "must be > 0 (bytes)")
	}
	if t.IdleConnTimeout <= 0 {
		v.errorf(v.at(tl, "idle_conn_timeout"), "must be > 0")
	}
	switch ht := v.at(tl, "http_transport"); t.HTTPTransport {
	case "", HTTPTransportNetHTTP:
	case HTTPTransportBuiltin:
		if urlOK && !strings.HasPrefix(strings.ToLower(t.URL), "http://") {
			v.errorf(ht, "builtin speaks HTTP/1.1 without TLS, for http:// urls; an https:// target uses net/http")
		}
	default:
		v.errorf(ht, "%s is not one of builtin, net/http", quote(t.HTTPTransport))
	}

	v.tls(t.TLS, v.at(tl, "tls"))
	v.traffic(t.Traffic, v.at(tl, "traffic"))
	v.request(t.Request, v.at(tl, "request"))
	v.warmup(t.Warmup, v.at(tl, "warmup"))
	v.warmupReachable(t, v.at(tl, "warmup"))
	sl := v.at(tl, "slo")
	v.nonNegative(v.at(sl, "ttft"), t.SLO.TTFT)
	v.nonNegative(v.at(sl, "tpot"), t.SLO.TPOT)
	v.nonNegative(v.at(sl, "e2e"), t.SLO.E2E)
	if r := t.SLO.TargetRatio; !(r > 0 && r < 1) {
		v.errorf(v.at(sl, "target_ratio"), "must be > 0 and < 1 (a share of requests: 0.99 is 99%%), not %g", r)
	}
	if w := t.SLO.Window; w < MinSLOWindow {
		v.errorf(v.at(sl, "window"), "must be ≥ %s (the longest burn-rate alert window, 3 days), not %s", MinSLOWindow, w)
	}
	if f := t.SLO.RegressionFactor; !(f > 1 && f <= 100) {
		v.errorf(v.at(sl, "regression_factor"), "must be > 1 and ≤ 100 (times the baseline), not %g", f)
	}
	if t.Metrics != nil {
		v.metrics(t.Metrics, v.at(tl, "metrics"), urlOK)
	}
}

func (v *validator) positive(l loc, d time.Duration) {
	if d <= 0 {
		v.errorf(l, "must be > 0")
	}
}

func (v *validator) nonNegative(l loc, d time.Duration) {
	if d < 0 {
		v.errorf(l, "must not be negative")
	}
}

func (v *validator) headers(t *Target, tl loc) {
	hl := v.at(tl, "headers")
	names := make([]string, 0, len(t.Headers))
	for k := range t.Headers {
		names = append(names, k)
	}
	sort.Strings(names) // map order is random; errors must not be
	seen := map[string]string{}
	for _, k := range names {
		l := v.at(hl, k)
		canon := http.CanonicalHeaderKey(k)
		if !validHeaderName(k) {
			v.errorf(l, "is not a valid HTTP header name")
			continue
		}
		if other, dup := seen[canon]; dup {
			v.errorf(l, "duplicates header %s (header names are case-insensitive)", other)
			continue
		}
		seen[canon] = k
		// Never quote the value: a header can carry a credential.
		if hasControl(t.Headers[k]) {
			v.errorf(l, "value contains a line break or control character")
		}
		switch canon {
		case "Authorization":
			if t.APIKeyFile != "" || t.APIKeyEnv != "" {
				v.errorf(l, "must not be set together with api_key_file or api_key_env, which send the key as \"Authorization: Bearer <key>\"")
			}
		case "Content-Type":
			v.errorf(l, "cannot be overridden: requests are always application/json")
		case "Accept":
			v.errorf(l, "cannot be overridden: inferprobe asks for text/event-stream, the stream it times")
		case "Content-Length", "Transfer-Encoding", "Host", "Connection":
			v.errorf(l, "is managed by the HTTP client and cannot be set")
		}
	}
}

func (v *validator) tls(c TLS, l loc) {
	ca, cert, key := v.at(l, "ca_file"), v.at(l, "cert_file"), v.at(l, "key_file")
	if c.CAFile != "" {
		if pem, err := os.ReadFile(c.CAFile); err != nil {
			v.errorf(ca, "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.errorf(ca, "%s holds no PEM certificate", quote(c.CAFile))
		}
	} else if v.given(ca) {
		v.errorf(ca, "must not be empty (omit it to trust the system roots)")
	}
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		v.errorf(key, "required when cert_file is set")
	case c.CertFile == "" && c.KeyFile != "":
		v.errorf(cert, "required when key_file is set")
	case c.CertFile != "":
		if cert.failed || key.failed {
			break
		}
		// The error names the files and the problem but never the key material.
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			v.errorf(cert, "cannot load the client certificate with key_file: %v", err)
		}
	}
	if strings.ContainsAny(c.ServerName, " /:") || hasControl(c.ServerName) {
		v.errorf(v.at(l, "server_name"), "must be a host name, not %s", quote(c.ServerName))
	}
}

// traffic checks what every pacer shares; the pacer kind's own fields are its extension's.
func (v *validator) traffic(t Traffic, l loc) {
	if t.MaxInFlight < 1 {
		v.errorf(v.at(l, "max_in_flight"), "must be ≥ 1")
	}
}

func (v *validator) request(r Request, l loc) {
	prompt, in := v.at(l, "prompt"), v.at(l, "input_tokens")
	switch {
	case r.Prompt != "" && (!r.InputTokens.IsZero() || v.given(in)):
		v.errorf(in, "cannot be used together with prompt: choose a fixed prompt or a generated one")
	case r.Prompt == "" && v.given(prompt):
		v.errorf(prompt, "must not be empty (omit it to send a generated prompt of input_tokens tokens)")
	case r.Prompt == "" && r.InputTokens.Dist != nil:
		v.lengthDist(*r.InputTokens.Dist, in)
	case r.Prompt == "" && (r.InputTokens.N < 1 || r.InputTokens.N > MaxTokensLimit):
		v.errorf(in, "must be ≥ 1 and ≤ %d", MaxTokensLimit)
	}
	out, maxTok := v.at(l, "output_tokens"), v.at(l, "max_tokens")
	switch {
	case !r.OutputTokens.IsZero() && v.given(maxTok):
		v.errorf(out, "cannot be used together with max_tokens: output_tokens sets each request's max_tokens")
	case r.OutputTokens.Dist != nil:
		v.lengthDist(*r.OutputTokens.Dist, out)
	case v.given(out) && (r.OutputTokens.N < 1 || r.OutputTokens.N > MaxTokensLimit):
		v.errorf(out, "must be ≥ 1 and ≤ %d", MaxTokensLimit)
	case r.OutputTokens.IsZero() && (r.MaxTokens < 1 || r.MaxTokens > MaxTokensLimit):
		v.errorf(maxTok, "must be ≥ 1 and ≤ %d", MaxTokensLimit)
	}
	if r.Temperature != nil && !(*r.Temperature >= 0 && *r.Temperature <= 2) {
		v.errorf(v.at(l, "temperature"), "must be between 0 and 2, not %g", *r.Temperature)
	}
	eb := v.at(l, "extra_body")
	keys := make([]string, 0, len(r.ExtraBody))
	for k := range r.ExtraBody {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "stream":
			v.errorf(v.at(eb, k), "cannot be set: inferprobe always streams, which is how it times tokens")
		case "model":
			v.errorf(v.at(eb, k), "cannot be set here: use the target's model field")
		}
	}
	if _, err := json.Marshal(r.ExtraBody); err != nil {
		v.errorf(eb, "cannot be encoded as JSON: %v", err)
	}
	v.loraSplit(r.LoRATrafficSplit, v.at(l, "lora_traffic_split"))
}

// Length distributions, as written in a length's dist key.
const (
	DistFixed     = "fixed"
	DistUniform   = "uniform"
	DistNormal    = "normal"
	DistLognormal = "lognormal"
)

// lengthDist checks a length distribution; l is the length's own field.
func (v *validator) lengthDist(d LengthDist, l loc) {
	at := func(k string) loc { return v.at(l, k) }
	lo, hi := d.Min, d.Max
	if lo == 0 {
		lo = 1
	}
	if hi == 0 {
		hi = MaxTokensLimit
	}
	if d.Min < 0 || d.Min > MaxTokensLimit {
		v.errorf(at("min"), "must be ≥ 1 and ≤ %d", MaxTokensLimit)
	}
	if d.Max < 0 || d.Max > MaxTokensLimit {
		v.errorf(at("max"), "must be ≥ 1 and ≤ %d", MaxTokensLimit)
	} else if lo > hi {
		v.errorf(at("max"), "%d is below min (%d)", d.Max, lo)
	}
	mean := func() {
		if !(d.Mean >= 1 && d.Mean <= MaxTokensLimit) {
			v.errorf(at("mean"), "must be ≥ 1 and ≤ %d, not %g", MaxTokensLimit, d.Mean)
		}
	}
	switch d.Dist {
	case DistFixed:
		mean()
		if d.Stddev != 0 {
			v.errorf(at("stddev"), "is not used by dist fixed")
		}
	case DistUniform:
		if d.Min == 0 || d.Max == 0 {
			v.errorf(at("dist"), "uniform needs min and max")
		}
		if d.Mean != 0 || d.Stddev != 0 {
			v.errorf(at("dist"), "uniform reads min and max, not mean and stddev")
		}
	case DistNormal, DistLognormal:
		mean()
		if !(d.Stddev >= 0 && d.Stddev <= MaxTokensLimit) {
			v.errorf(at("stddev"), "must be ≥ 0 and ≤ %d, not %g", MaxTokensLimit, d.Stddev)
		}
	default:
		v.errorf(at("dist"), "must be one of fixed, uniform, normal, lognormal, not %s", quote(d.Dist))
	}
}

// loraSplitTolerance is how far from 1 the shares of a LoRA split may sum (rounding in
// hand-written decimals such as 0.33 + 0.33 + 0.34 is exact enough; 0.3 + 0.3 + 0.3 is not).
const loraSplitTolerance = 1e-6

func (v *validator) loraSplit(split []LoRAAdapter, l loc) {
	if len(split) == 0 {
		if v.given(l) {
			v.errorf(l, "must not be empty (omit it to send every request to the base model)")
		}
		return
	}
	seen := map[string]int{}
	sum, ok := 0.0, true
	for i, a := range split {
		il := v.item(l, i)
		switch {
		case a.Name == "":
			v.errorf(v.at(il, "name"), "required (the adapter name the server serves, or the base model's name)")
		case hasControl(a.Name) || strings.ContainsAny(a.Name, " \t"):
			v.errorf(v.at(il, "name"), "%s must not contain spaces or control characters", quote(a.Name))
		default:
			if first, dup := seen[a.Name]; dup {
				v.errorf(v.at(il, "name"), "duplicate adapter %s (also entry %d)", quote(a.Name), first)
			} else {
				seen[a.Name] = i
			}
		}
		if !(a.Split > 0 && a.Split <= 1) {
			v.errorf(v.at(il, "split"), "must be > 0 and ≤ 1, not %g", a.Split)
			ok = false
		}
		sum += a.Split
	}
	if ok && math.Abs(sum-1) > loraSplitTolerance {
		v.errorf(l, "splits must sum to 1 (within %g), not %g", loraSplitTolerance, sum)
	}
}

func (v *validator) warmup(w Warmup, l loc) {
	if w.Requests < 0 {
		v.errorf(v.at(l, "requests"), "must be ≥ 0")
	}
	minL, maxL := v.at(l, "min_duration"), v.at(l, "max_duration")
	v.nonNegative(minL, w.MinDuration)
	switch {
	case w.MaxDuration <= 0:
		v.errorf(maxL, "must be > 0")
	case w.MinDuration > w.MaxDuration && !minL.failed:
		v.errorf(maxL, "%s must not be shorter than min_duration (%s)", w.MaxDuration, w.MinDuration)
	}
	if w.RecoveryFailures != nil && *w.RecoveryFailures < 0 {
		v.errorf(v.at(l, "recovery_failures"), "must be ≥ 0 (0 turns the signal off)")
	}
	if !(w.StableWithin >= 0 && w.StableWithin < 1) {
		v.errorf(v.at(l, "stable_within"), "must be ≥ 0 and < 1 (a ratio: 0.1 is 10%%), not %g", w.StableWithin)
	}
}

// warmupReachable warns about a warmup that cannot complete at the configured rate: the
// requests it needs take longer to send than max_duration, so the gate would be forced open
// (and the warmup meaningless) on every start and every re-arm.
func (v *validator) warmupReachable(t *Target, l loc) {
	w := t.Warmup
	if w.Requests < 1 || !(t.Traffic.Rate > 0) || w.MaxDuration <= 0 {
		return
	}
	need := time.Duration(float64(w.Requests) / t.Traffic.Rate * float64(time.Second))
	if need > w.MaxDuration {
		v.warnf(v.at(l, "requests"), "%d warmup requests at %g req/s take about %s, longer than max_duration (%s): "+
			"the gate would be forced open on every start; lower warmup.requests or raise traffic.rate or warmup.max_duration",
			w.Requests, t.Traffic.Rate, need.Round(time.Second), w.MaxDuration)
	}
}

func (v *validator) metrics(m *Metrics, l loc, targetURLOK bool) {
	u := v.at(l, "url")
	if msg := checkHTTPURL(m.URL); msg != "" && (m.URL != "" || targetURLOK || v.given(u)) {
		v.errorf(u, "%s", msg)
	}
	interval := v.at(l, "interval")
	v.positive(interval, m.Interval)
	timeout := v.at(l, "timeout")
	switch {
	case m.Timeout <= 0:
		v.errorf(timeout, "must be > 0")
	case m.Interval > 0 && m.Timeout > m.Interval && !interval.failed:
		v.errorf(timeout, "%s must not exceed interval (%s)", m.Timeout, m.Interval)
	}
	pl := v.at(l, "passthrough")
	for i, re := range m.Passthrough {
		il := v.item(pl, i)
		if re == "" {
			v.errorf(il, "must not be empty")
			continue
		}
		if _, err := regexp.Compile(re); err != nil {
			v.errorf(il, "is not a valid regular expression: %v", err)
		}
	}
}

// validName reports whether s matches [a-zA-Z0-9_.:-]+.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("_.:-", r):
		default:
			return false
		}
	}
	return true
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// validHeaderName reports whether s is an RFC 9110 token, which a header name must be.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hasControl reports whether s holds a control character other than tab; such a character
// cannot travel in an HTTP header and is never meant in a path or name.
func hasControl(s string) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return true
		}
	}
	return false
}
