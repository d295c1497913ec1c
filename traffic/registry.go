package traffic

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/inferprobe/inferprobe/config"
)

// Limits the pacer kinds check, so that a typo (an extra zero or three) is an error and not an
// accidental load test.
const (
	// MaxRate is the highest rate accepted, in requests per second.
	MaxRate = 100_000
	// MaxConcurrency is the highest concurrency accepted.
	MaxConcurrency = 100_000
	// MaxStages is the most stages one target may have.
	MaxStages = 1000
	// MinBurstiness and MaxBurstiness bound the gamma shape: outside them the gaps leave
	// float64's useful range (the coefficient of variation would be above 100 or below 0.001).
	MinBurstiness = 1e-4
	MaxBurstiness = 1e6
	// DefaultRate is the rate of an open-loop pacer that sets none.
	DefaultRate = 1.0
)

// PacerKind is one registered arrival process: the name written as traffic.pacer, the traffic
// keys it reads, and how it is checked, defaulted and built. Config validation (through
// ConfigExtension) and construction (PlanFor) both read the one table of kinds, so a new
// pacer is a file with its functions plus a line in pacerKinds.
type PacerKind struct {
	// Name is the value of traffic.pacer.
	Name string
	// Summary is the one-line description docs/configuration.md carries.
	Summary string
	// Fields are the traffic keys the kind reads besides pacer, max_in_flight and seed;
	// setting another is an error (it would be silently ignored otherwise).
	Fields []string
	// InStages says the kind may be a stage's pacer.
	InStages bool

	defaults func(t *config.Traffic, given func(string) bool)
	check    func(t config.Traffic, report config.Reporter)
	plan     func(t config.Traffic, seed uint64) Plan
	// load builds the plan of a kind that reads a file (and can fail there); it is used
	// instead of plan when set.
	load func(t config.Traffic, seed uint64) (Plan, error)
}

// Kinds of pacer, as written in the configuration.
const (
	// KindConcurrent keeps a fixed number of requests in flight (closed loop).
	KindConcurrent = "concurrent"
	// KindStages runs a list of rate or concurrency steps.
	KindStages = "stages"
	// KindTrace replays a request trace: its arrivals and each request's lengths.
	KindTrace = "trace"
)

// pacerKinds is the registry, in the order the docs list the kinds. It is built on each call
// (only configuration loading and construction read it), so there is no shared table to
// guard or to modify.
func pacerKinds() []PacerKind {
	return []PacerKind{
		{Name: KindConstant, Summary: "Evenly spaced requests at `rate`.", Fields: []string{"rate"}, InStages: true,
			defaults: defaultRate, check: checkRate, plan: openPlan(KindConstant)},
		{Name: KindPoisson, Summary: "A Poisson process at `rate`: independent exponential gaps, bursts and lulls like independent users.",
			Fields: []string{"rate"}, InStages: true, defaults: defaultRate, check: checkRate, plan: openPlan(KindPoisson)},
		{Name: KindGamma, Summary: "Gamma-distributed gaps at `rate` with shape `burstiness` (vLLM's benchmark definition): 1 is Poisson, below 1 burstier, above 1 more regular.",
			Fields: []string{"rate", "burstiness"}, InStages: true, defaults: defaultGamma, check: checkGamma, plan: openPlan(KindGamma)},
		{Name: KindConcurrent, Summary: "Closed loop: exactly `concurrency` requests in flight, a new one sent when one finishes.",
			Fields: []string{"concurrency"}, check: checkConcurrent, defaults: defaultMaxInFlight, plan: func(t config.Traffic, _ uint64) Plan {
				return Plan{Phases: []Phase{ClosedPhase(0, t.Concurrency)}}
			}},
		{Name: KindStages, Summary: "A list of `{rate | concurrency, duration, pacer, burstiness}` steps, run in order and looped forever in the daemon (once by a one-shot run).",
			Fields: []string{"stages"}, check: checkStages, defaults: defaultMaxInFlight, plan: stagesPlan},
		{Name: KindTrace, Summary: "Replays the `trace` file (Azure CSV or Mooncake JSONL): arrivals at the rows' times divided by `time_scale`, each request's input and output lengths from its row, looping forever in the daemon (once by a one-shot run).",
			Fields: []string{"trace"}, defaults: defaultTrace, check: checkTrace, load: tracePlan},
	}
}

// PacerKinds returns the registered pacer kinds, in documentation order.
func PacerKinds() []PacerKind { return pacerKinds() }

// LookupPacer returns the registered kind called name.
func LookupPacer(name string) (PacerKind, bool) {
	for _, k := range pacerKinds() {
		if k.Name == name {
			return k, true
		}
	}
	return PacerKind{}, false
}

// pacerNames lists the registered names for error messages, filtered by keep.
func pacerNames(keep func(PacerKind) bool) string {
	var names []string
	for _, k := range pacerKinds() {
		if keep == nil || keep(k) {
			names = append(names, k.Name)
		}
	}
	return strings.Join(names, ", ")
}

// PlanFor builds the plan of a validated traffic block from the registry, with every random
// choice drawn from seed. Stages get seeds of their own, derived from seed and their index.
func PlanFor(t config.Traffic, seed uint64) (Plan, error) {
	k, ok := LookupPacer(t.Pacer)
	if !ok {
		return Plan{}, fmt.Errorf("traffic: unknown pacer %q (registered: %s)", t.Pacer, pacerNames(nil))
	}
	var problems []string
	k.check(t, func(field, format string, args ...any) {
		problems = append(problems, field+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) > 0 {
		return Plan{}, fmt.Errorf("traffic: %s", strings.Join(problems, "; "))
	}
	if k.load != nil {
		return k.load(t, seed)
	}
	return k.plan(t, seed), nil
}

// ConfigExtension checks and defaults traffic blocks against the pacer registry; the engine
// hands it to config.Load.
type ConfigExtension struct{}

var _ config.Extension = ConfigExtension{}

// Defaults implements config.Extension: the pacer defaults to constant, and the kind fills
// in its own fields (rate 1 for open-loop kinds; max_in_flight at least the concurrency).
func (ConfigExtension) Defaults(t *config.Target, given func(string) bool) {
	tr := &t.Traffic
	if tr.Pacer == "" && !given("traffic.pacer") {
		tr.Pacer = KindConstant
	}
	if k, ok := LookupPacer(tr.Pacer); ok && k.defaults != nil {
		k.defaults(tr, func(f string) bool { return given("traffic." + f) })
	}
	if tr.Pacer == KindTrace && !given("request.ignore_eos") {
		// A trace's output lengths are only replayed if the server generates exactly
		// max_tokens.
		t.Request.IgnoreEOS = true
	}
}

// Check implements config.Extension.
func (ConfigExtension) Check(t *config.Target, given func(string) bool, report config.Reporter) {
	tr := t.Traffic
	k, ok := LookupPacer(tr.Pacer)
	if !ok {
		report("traffic.pacer", "must be one of %s, not %s", pacerNames(nil), config.Quote(tr.Pacer))
		return
	}
	for _, f := range []string{"rate", "burstiness", "concurrency", "stages", "trace"} {
		if given("traffic."+f) && !slices.Contains(k.Fields, f) {
			report("traffic."+f, "is not used by pacer %s (it reads %s)", k.Name, strings.Join(k.Fields, ", "))
		}
	}
	sub := func(field, format string, args ...any) { report("traffic."+field, format, args...) }
	k.check(tr, sub)
	if k.Name == KindTrace {
		if given("request.max_tokens") {
			report("request.max_tokens", "is not used with pacer trace: each request's output length comes from its trace row")
		}
	}
	checkSources(t, given, report)
	if k.Name == KindConcurrent && tr.MaxInFlight > 0 && tr.Concurrency > tr.MaxInFlight {
		report("traffic.max_in_flight", "%d is below concurrency (%d): raise it or omit it", tr.MaxInFlight, tr.Concurrency)
	}
	if k.Name == KindStages && tr.MaxInFlight > 0 {
		for i, s := range tr.Stages {
			if s.Concurrency > tr.MaxInFlight {
				report("traffic.max_in_flight", "%d is below stages[%d].concurrency (%d): raise it or omit it", tr.MaxInFlight, i, s.Concurrency)
				break
			}
		}
	}
}

func defaultRate(t *config.Traffic, given func(string) bool) {
	if t.Rate == 0 && !given("rate") {
		t.Rate = DefaultRate
	}
}

func defaultGamma(t *config.Traffic, given func(string) bool) {
	defaultRate(t, given)
	if t.Burstiness == 0 && !given("burstiness") {
		t.Burstiness = 1
	}
}

// defaultMaxInFlight raises the default in-flight cap (64) to the largest concurrency, so that
// a closed loop of 256 needs no second setting; a cap the file sets is kept and checked.
func defaultMaxInFlight(t *config.Traffic, given func(string) bool) {
	if given("max_in_flight") {
		return
	}
	need := t.Concurrency
	for _, s := range t.Stages {
		need = max(need, s.Concurrency)
	}
	t.MaxInFlight = max(t.MaxInFlight, need)
}

func checkRateValue(field string, rate float64, report config.Reporter) {
	if !(rate > 0 && rate <= MaxRate) {
		report(field, "must be > 0 and ≤ %d requests per second, not %g", MaxRate, rate)
	}
}

func checkBurstiness(field string, b float64, report config.Reporter) {
	if !(b >= MinBurstiness && b <= MaxBurstiness) {
		report(field, "must be > 0 (the gamma shape: 1 is Poisson, < 1 burstier, > 1 more regular; between %g and %g), not %g", MinBurstiness, MaxBurstiness, b)
	}
}

func checkConcurrencyValue(field string, c int, report config.Reporter) {
	if c < 1 || c > MaxConcurrency {
		report(field, "must be ≥ 1 and ≤ %d requests in flight, not %d", MaxConcurrency, c)
	}
}

func checkRate(t config.Traffic, report config.Reporter) { checkRateValue("rate", t.Rate, report) }

func checkGamma(t config.Traffic, report config.Reporter) {
	checkRateValue("rate", t.Rate, report)
	checkBurstiness("burstiness", t.Burstiness, report)
}

func checkConcurrent(t config.Traffic, report config.Reporter) {
	checkConcurrencyValue("concurrency", t.Concurrency, report)
}

// cvOf turns the gamma shape (burstiness) into the coefficient of variation NewGamma takes.
func cvOf(burstiness float64) float64 { return 1 / math.Sqrt(burstiness) }

func openPlan(kind string) func(config.Traffic, uint64) Plan {
	return func(t config.Traffic, seed uint64) Plan {
		cv := 1.0
		if kind == KindGamma {
			cv = cvOf(t.Burstiness)
		}
		return Plan{Phases: []Phase{OpenPhase(0, kind, t.Rate, cv, SubSeed(seed, "arrivals"))}}
	}
}

func checkStages(t config.Traffic, report config.Reporter) {
	if len(t.Stages) == 0 {
		report("stages", "needs at least one stage, e.g. [{rate: 1, duration: 10m}, {concurrency: 8, duration: 1m}]")
		return
	}
	if len(t.Stages) > MaxStages {
		report("stages", "has %d stages; at most %d", len(t.Stages), MaxStages)
		return
	}
	var total time.Duration
	for i, s := range t.Stages {
		at := func(f string) string { return "stages[" + strconv.Itoa(i) + "]" + f }
		switch {
		case s.Rate != 0 && s.Concurrency != 0:
			report(at(".concurrency"), "cannot be used together with rate: a stage is open loop (rate) or closed loop (concurrency)")
		case s.Rate == 0 && s.Concurrency == 0:
			report(at(""), "needs rate (requests per second) or concurrency (requests in flight)")
		case s.Concurrency != 0:
			checkConcurrencyValue(at(".concurrency"), s.Concurrency, report)
			if s.Pacer != "" {
				report(at(".pacer"), "is only for rate stages (a concurrency stage is closed loop)")
			}
		default:
			checkRateValue(at(".rate"), s.Rate, report)
			switch k, ok := LookupPacer(s.Pacer); {
			case s.Pacer == "":
			case !ok || !k.InStages:
				report(at(".pacer"), "must be one of %s, not %s", pacerNames(func(k PacerKind) bool { return k.InStages }), config.Quote(s.Pacer))
			}
			if s.Pacer == KindGamma {
				checkBurstiness(at(".burstiness"), s.Burstiness, report)
			} else if s.Burstiness != 0 {
				report(at(".burstiness"), "is only for stages with pacer gamma")
			}
		}
		if s.Duration <= 0 {
			report(at(".duration"), "must be > 0")
		} else if s.Duration > math.MaxInt64/2-total {
			report(at(".duration"), "makes the stages longer than a schedule can be")
			return
		} else {
			total += s.Duration
		}
	}
}

func stagesPlan(t config.Traffic, seed uint64) Plan {
	p := Plan{Loop: true, Staged: true}
	for i, s := range t.Stages {
		if s.Concurrency > 0 {
			p.Phases = append(p.Phases, ClosedPhase(s.Duration, s.Concurrency))
			continue
		}
		kind, cv := s.Pacer, 1.0
		if kind == "" {
			kind = KindConstant
		}
		if kind == KindGamma {
			cv = cvOf(s.Burstiness)
		}
		p.Phases = append(p.Phases, OpenPhase(s.Duration, kind, s.Rate, cv, SubSeed(seed, "stage", strconv.Itoa(i))))
	}
	return p
}
