package config

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Experiment is the `experiment` block `inferprobe sensitivity` reads (the daemon ignores it):
// throughput against a delay injected into the server, level by level.
type Experiment struct {
	// Levels are the injected delays, e.g. [0, 10us, 100us, 1ms].
	Levels []time.Duration `yaml:"levels"`
	// Repeats is how many measurements each level gets.
	Repeats int `yaml:"repeats"`
	// Warmup is the time, per repeat and after the server is ready, that is not measured.
	Warmup time.Duration `yaml:"warmup"`
	// Measure is the measured window of each repeat.
	Measure time.Duration `yaml:"measure"`
	// Load is the traffic every target gets during a level.
	Load ExperimentLoad `yaml:"load"`
	// Command starts the server for each level; Hook changes the delay of a running one.
	Command *ExperimentCommand `yaml:"command"`
	Hook    *ExperimentHook    `yaml:"hook"`
	// Subsystems compares target-pattern files at one delay and ranks them by throughput drop.
	Subsystems *ExperimentSubsystems `yaml:"subsystems"`
}

// ExperimentSubsystems is the subsystem comparison of an experiment: each file (passed to the
// templates as .TargetsFile, e.g. SPEED_BUMP_TARGETS) is run at Delay, against the same load
// without delay, and the files are ranked by how much throughput drops.
type ExperimentSubsystems struct {
	// Delay is the delay every file is compared at.
	Delay time.Duration `yaml:"delay"`
	// Files are the target-pattern files (numpy.*:*, vllm.model_executor:* …), relative to the
	// configuration file.
	Files []string `yaml:"files"`
}

// ExperimentLoad is the load of an experiment: closed-loop concurrency or an open-loop rate.
type ExperimentLoad struct {
	// Concurrency keeps this many requests in flight (saturating load shows sensitivity best).
	Concurrency int `yaml:"concurrency"`
	// Rate sends Poisson arrivals at this many requests per second.
	Rate float64 `yaml:"rate"`
}

// ExperimentCommand starts the server under test once per level.
type ExperimentCommand struct {
	// Argv is the program and its arguments; each is a template (LevelVars).
	Argv []string `yaml:"argv"`
	// Env is added to inferprobe's environment; each value is a template (LevelVars), e.g.
	// SPEED_BUMP_DELAY_NS: "{{.DelayNS}}".
	Env map[string]string `yaml:"env"`
	// Dir is the working directory (default: inferprobe's).
	Dir string `yaml:"dir"`
	// ReadyURL is polled until it answers 2xx; then the level's measurement starts.
	ReadyURL string `yaml:"ready_url"`
	// ReadyTimeout bounds the wait for ReadyURL.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// StopTimeout is how long the server gets to exit after SIGTERM before SIGKILL.
	StopTimeout time.Duration `yaml:"stop_timeout"`
}

// ExperimentHook sets the delay of a running server over HTTP.
type ExperimentHook struct {
	// URL receives one request per level.
	URL string `yaml:"url"`
	// Method is the HTTP method.
	Method string `yaml:"method"`
	// Body is a template (LevelVars) sent as the request body.
	Body string `yaml:"body"`
}

// LevelVars are what the experiment's templates can use.
type LevelVars struct {
	// Level is the level's index; DelayNS its delay in nanoseconds and Delay as a Go duration.
	Level   int
	DelayNS int64
	Delay   string
	// TargetsFile is the path of the subsystem target-pattern file ("" when none).
	TargetsFile string
	// Repeats, WarmupMS and MeasureMS are the experiment's repeats and windows (milliseconds),
	// WindowsMS all of a level's windows, Repeats × (WarmupMS + MeasureMS): what
	// SPEED_BUMP_START_MS and SPEED_BUMP_DURATION_MS need to keep the bump to the windows.
	Repeats   int
	WarmupMS  int64
	MeasureMS int64
	WindowsMS int64
}

// Vars returns the template fields of one level of e: its index, delay and target-pattern file,
// and e's repeats and windows.
func (e *Experiment) Vars(level int, delay time.Duration, targetsFile string) LevelVars {
	w, m := e.Warmup.Milliseconds(), e.Measure.Milliseconds()
	return LevelVars{Level: level, DelayNS: delay.Nanoseconds(), Delay: delay.String(), TargetsFile: targetsFile,
		Repeats: e.Repeats, WarmupMS: w, MeasureMS: m, WindowsMS: int64(e.Repeats) * (w + m)}
}

// Experiment defaults.
const (
	DefaultExperimentRepeats      = 1
	DefaultExperimentReadyTimeout = 10 * time.Minute
	DefaultExperimentStopTimeout  = 10 * time.Second
	DefaultExperimentHookMethod   = "POST"
)

// Render executes a template of the experiment with vars; it fails on unknown fields.
func Render(text string, vars LevelVars) (string, error) {
	t, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, vars); err != nil {
		return "", err
	}
	return b.String(), nil
}

func applyExperimentDefaults(e *Experiment, set map[string]bool) {
	if e == nil {
		return
	}
	if e.Repeats == 0 && !set["experiment.repeats"] {
		e.Repeats = DefaultExperimentRepeats
	}
	if c := e.Command; c != nil {
		if c.ReadyTimeout == 0 && !set["experiment.command.ready_timeout"] {
			c.ReadyTimeout = DefaultExperimentReadyTimeout
		}
		if c.StopTimeout == 0 && !set["experiment.command.stop_timeout"] {
			c.StopTimeout = DefaultExperimentStopTimeout
		}
	}
	if h := e.Hook; h != nil && h.Method == "" {
		h.Method = DefaultExperimentHookMethod
	}
}

func (v *validator) experiment(e *Experiment, l loc) {
	if e == nil {
		return
	}
	levels := v.at(l, "levels")
	if len(e.Levels) == 0 {
		v.errorf(levels, "needs at least one delay, e.g. [0, 10us, 100us, 1ms]")
	}
	sorted := slices.Clone(e.Levels)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(e.Levels) {
		v.errorf(levels, "has a delay twice")
	}
	if e.Repeats < 1 {
		v.errorf(v.at(l, "repeats"), "must be ≥ 1")
	}
	if e.Measure <= 0 {
		v.errorf(v.at(l, "measure"), "must be > 0 (the measured window of each repeat)")
	}
	load := v.at(l, "load")
	switch {
	case e.Load.Concurrency != 0 && e.Load.Rate != 0:
		v.errorf(v.at(load, "rate"), "cannot be used together with concurrency: choose closed or open loop")
	case e.Load.Concurrency < 0:
		v.errorf(v.at(load, "concurrency"), "must be ≥ 1")
	case e.Load.Rate < 0 || e.Load.Rate > MaxRate:
		v.errorf(v.at(load, "rate"), "must be > 0 and ≤ %d requests per second", MaxRate)
	case e.Load.Concurrency == 0 && e.Load.Rate == 0:
		v.errorf(load, "needs concurrency (requests in flight) or rate (requests per second)")
	}
	sample := e.Vars(1, time.Microsecond, "/tmp/targets")
	tmpl := func(at loc, text string) {
		if _, err := Render(text, sample); err != nil {
			v.errorf(at, "is not a valid template (fields: .Level, .DelayNS, .Delay, .TargetsFile, .Repeats, .WarmupMS, .MeasureMS, .WindowsMS): %v", err)
		}
	}
	switch {
	case e.Command != nil && e.Hook != nil:
		v.errorf(v.at(l, "hook"), "cannot be used together with command: a level either starts a server or tells a running one")
	case e.Command == nil && e.Hook == nil:
		v.errorf(l, "needs command (start the server per level) or hook (set the delay of a running server)")
	}
	if c := e.Command; c != nil {
		cl := v.at(l, "command")
		al := v.at(cl, "argv")
		if len(c.Argv) == 0 || c.Argv[0] == "" {
			v.errorf(al, "needs the program to run, e.g. [vllm, serve, my-model]")
		}
		for i, a := range c.Argv {
			tmpl(v.item(al, i), a)
		}
		el := v.at(cl, "env")
		keys := make([]string, 0, len(c.Env))
		for k := range c.Env {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !validEnvName(k) {
				v.errorf(v.at(el, k), "is not an environment variable name")
			}
			tmpl(v.at(el, k), c.Env[k])
		}
		if msg := checkHTTPURL(c.ReadyURL); msg != "" {
			v.errorf(v.at(cl, "ready_url"), "%s", msg)
		}
		v.positive(v.at(cl, "ready_timeout"), c.ReadyTimeout)
		v.positive(v.at(cl, "stop_timeout"), c.StopTimeout)
	}
	if sub := e.Subsystems; sub != nil {
		sl := v.at(l, "subsystems")
		if sub.Delay <= 0 {
			v.errorf(v.at(sl, "delay"), "must be > 0 (the delay every file is compared at)")
		}
		fl := v.at(sl, "files")
		if len(sub.Files) == 0 {
			v.errorf(fl, "needs at least one target-pattern file")
		}
		for i, f := range sub.Files {
			if fi, err := os.Stat(f); err != nil {
				v.errorf(v.item(fl, i), "cannot read: %v", err)
			} else if fi.IsDir() {
				v.errorf(v.item(fl, i), "%s is a directory, not a file", quote(f))
			}
		}
	}
	if h := e.Hook; h != nil {
		hl := v.at(l, "hook")
		u := h.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i] // a hook may take its delay in the query
		}
		if msg := checkHTTPURL(u); msg != "" {
			v.errorf(v.at(hl, "url"), "%s", msg)
		}
		switch h.Method {
		case "POST", "PUT", "GET":
		default:
			v.errorf(v.at(hl, "method"), "must be POST, PUT or GET, not %s", quote(h.Method))
		}
		tmpl(v.at(hl, "body"), h.Body)
		tmpl(v.at(hl, "url"), h.URL)
	}
}
