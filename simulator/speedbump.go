package simulator

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// Speed-bump environment variables: the names the slowdown method's instrumentation reads, so
// `inferprobe sensitivity` drives the simulator exactly as it drives a real server.
const (
	EnvSpeedBumpDelayNS   = "SPEED_BUMP_DELAY_NS"
	EnvSpeedBumpFrequency = "SPEED_BUMP_FREQUENCY"
	EnvSpeedBumpTargets   = "SPEED_BUMP_TARGETS"
	// EnvSpeedBumpStartMS and EnvSpeedBumpDurationMS keep the bump to a window: from StartMS
	// after the server started, for DurationMS (unset or 0: to the end).
	EnvSpeedBumpStartMS    = "SPEED_BUMP_START_MS"
	EnvSpeedBumpDurationMS = "SPEED_BUMP_DURATION_MS"
)

// SpeedBump models host-side overhead that the slowdown method injects a delay into: the
// bumped code runs CallsPerStep times per decode step (once per output token of each request),
// each call delayed by Delay (with probability Frequency). Host time overlaps the device step
// up to Slack: a step is ITL plus only the part of the host time beyond Slack. Slack 0 is a
// host-bound server (every added nanosecond shows); a large slack a device-bound one (the
// delay hides under the GPU's work); in between a threshold.
type SpeedBump struct {
	Delay        time.Duration
	Frequency    float64
	CallsPerStep int
	Slack        time.Duration
	// Start and Duration are the window, after the server started, in which the bump acts
	// (Duration 0: from Start on); outside it a step costs nothing extra.
	Start    time.Duration
	Duration time.Duration
}

// addedSince is added for a step taken now by a server that started at started: 0 outside the
// window. Without a window it reads no clock.
func (b SpeedBump) addedSince(started time.Time) time.Duration {
	d := b.added()
	if d == 0 || (b.Start == 0 && b.Duration == 0) {
		return d
	}
	if !b.activeAt(time.Since(started)) {
		return 0
	}
	return d
}

// activeAt reports whether elapsed (since the server started) is inside the window.
func (b SpeedBump) activeAt(elapsed time.Duration) bool {
	return elapsed >= b.Start && (b.Duration == 0 || elapsed < b.Start+b.Duration)
}

// added returns the time the bump adds to one decode step.
func (b SpeedBump) added() time.Duration {
	if b.Delay <= 0 || b.CallsPerStep <= 0 || b.Frequency <= 0 {
		return 0
	}
	host := time.Duration(float64(b.Delay) * float64(b.CallsPerStep) * min(b.Frequency, 1))
	return max(0, host-b.Slack)
}

// FromEnv reads the delay, the frequency, the window (SPEED_BUMP_START_MS, _DURATION_MS) and
// (from SPEED_BUMP_TARGETS, one call site per non-comment line of the file) the calls per step
// from the speed-bump environment variables
// (getenv nil means os.Getenv), leaving the rest of b as it is. An unset variable keeps b's
// value; a malformed one is an error naming it.
func (b SpeedBump) FromEnv(getenv func(string) string) (SpeedBump, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvSpeedBumpDelayNS); v != "" {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ns < 0 {
			return b, fmt.Errorf("simulator: %s=%q: want a non-negative integer of nanoseconds", EnvSpeedBumpDelayNS, v)
		}
		b.Delay = time.Duration(ns)
	}
	if path := getenv(EnvSpeedBumpTargets); path != "" {
		// Each target pattern of the file stands for one instrumented call site that runs once
		// per decode step, so a file that names more of the hot path costs more.
		data, err := os.ReadFile(path)
		if err != nil {
			return b, fmt.Errorf("simulator: %s: %w", EnvSpeedBumpTargets, err)
		}
		n := 0
		for _, line := range strings.Split(string(data), "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				n++
			}
		}
		b.CallsPerStep = n
	}
	for _, w := range []struct {
		name string
		to   *time.Duration
	}{{EnvSpeedBumpStartMS, &b.Start}, {EnvSpeedBumpDurationMS, &b.Duration}} {
		if v := getenv(w.name); v != "" {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil || ms < 0 || ms > math.MaxInt64/int64(time.Millisecond) {
				return b, fmt.Errorf("simulator: %s=%q: want a non-negative integer of milliseconds", w.name, v)
			}
			*w.to = time.Duration(ms) * time.Millisecond
		}
	}
	if v := getenv(EnvSpeedBumpFrequency); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return b, fmt.Errorf("simulator: %s=%q: want a probability between 0 and 1", EnvSpeedBumpFrequency, v)
		}
		b.Frequency = f
	}
	return b, nil
}

// addSpeedBumpFlags registers the speed-bump model's flags; the delay itself comes from the
// environment (FromEnv), as the method's instrumentation reads it.
func addSpeedBumpFlags(cmd *kingpin.CmdClause, b *SpeedBump) {
	cmd.Flag("speed-bump.calls-per-step", "Times the speed-bumped host code runs per decode step ("+EnvSpeedBumpDelayNS+" delays each).").
		Default(strconv.Itoa(b.CallsPerStep)).IntVar(&b.CallsPerStep)
	cmd.Flag("speed-bump.slack", "Host time per decode step that overlaps the device step and adds nothing: 0 is host-bound, a large value device-bound.").
		Default(b.Slack.String()).DurationVar(&b.Slack)
}
