package accelerator

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// DefaultInterval is how often NVML is read unless configured otherwise.
const DefaultInterval = 5 * time.Second

// MinInterval is the shortest poll interval accepted; NVML's own sampling periods (utilisation,
// power) are in this range, so polling faster only repeats values.
const MinInterval = 100 * time.Millisecond

// Options configures the accelerator collector.
type Options struct {
	// Enabled turns the collector on (--collector.accelerator, default true).
	Enabled bool
	// Devices selects GPUs by NVML index ("0") or UUID ("GPU-…"); empty selects all.
	Devices []string
	// Interval is the time between two NVML reads; values below MinInterval are refused by
	// Validate, and New replaces a non-positive one by DefaultInterval.
	Interval time.Duration
}

// DefaultOptions returns the options the flags default to.
func DefaultOptions() Options {
	return Options{Enabled: true, Interval: DefaultInterval}
}

// Validate reports options the collector cannot run with.
func (o Options) Validate() error {
	if o.Interval < MinInterval {
		return fmt.Errorf("--collector.accelerator.interval: %s is shorter than the minimum %s", o.Interval, MinInterval)
	}
	for _, d := range o.Devices {
		if d == "" {
			return fmt.Errorf("--collector.accelerator.devices: empty device entry")
		}
	}
	return nil
}

// AddFlags registers the collector's flags on app in node_exporter's style and returns the
// options they fill when app parses its arguments:
//
//	--[no-]collector.accelerator            enable the collector (default on)
//	--collector.accelerator.devices=LIST    comma-separated GPU indices or UUIDs (default all)
//	--collector.accelerator.interval=5s     time between two NVML reads
func AddFlags(app *kingpin.Application) *Options {
	o := DefaultOptions()
	app.Flag("collector.accelerator", "Enable the accelerator (NVIDIA GPU, NVML) collector.").
		Default("true").BoolVar(&o.Enabled)
	app.Flag("collector.accelerator.devices", "Comma-separated NVML indices or UUIDs of the GPUs to export (empty: all).").
		Default("").SetValue((*deviceList)(&o.Devices))
	app.Flag("collector.accelerator.interval", "Time between two NVML reads; scrapes serve the last read.").
		Default(DefaultInterval.String()).DurationVar(&o.Interval)
	return &o
}

// deviceList is a kingpin value holding a comma-separated list of device selectors.
type deviceList []string

// Set parses a comma-separated list; blanks around entries are ignored.
func (l *deviceList) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, err := strconv.Atoi(s); err != nil && !looksLikeUUID(s) {
			return fmt.Errorf("%q is neither a GPU index nor a UUID (GPU-… or MIG-…)", s)
		}
		*l = append(*l, s)
	}
	return nil
}

// String returns the list as it would be given on the command line.
func (l *deviceList) String() string { return strings.Join(*l, ",") }

func looksLikeUUID(s string) bool {
	u := strings.ToUpper(s)
	return strings.HasPrefix(u, "GPU-") || strings.HasPrefix(u, "MIG-")
}

// selector matches devices against Options.Devices.
type selector struct {
	all     bool
	indices map[int]bool
	uuids   map[string]bool // upper case
	used    map[string]bool // entries that matched a device, to warn about the others
}

func newSelector(devices []string) *selector {
	s := &selector{all: len(devices) == 0, indices: map[int]bool{}, uuids: map[string]bool{}, used: map[string]bool{}}
	for _, d := range devices {
		if i, err := strconv.Atoi(d); err == nil {
			s.indices[i] = true
		} else {
			s.uuids[strings.ToUpper(d)] = true
		}
	}
	return s
}

// match reports whether the device with this index and UUID is selected.
func (s *selector) match(index int, uuid string) bool {
	if s.all {
		return true
	}
	ok := false
	if s.indices[index] {
		s.used[strconv.Itoa(index)] = true
		ok = true
	}
	if u := strings.ToUpper(uuid); s.uuids[u] {
		s.used[u] = true
		ok = true
	}
	return ok
}

// unmatched returns the selectors that matched no device.
func (s *selector) unmatched() []string {
	var out []string
	for i := range s.indices {
		if k := strconv.Itoa(i); !s.used[k] {
			out = append(out, k)
		}
	}
	for u := range s.uuids {
		if !s.used[u] {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}
