package server

import (
	"strings"

	"github.com/inferprobe/inferprobe/config"
)

// EngineNames returns the values metrics.engine accepts: auto, then every engine of the
// normalisation table in the order auto-detection breaks ties. Config validation
// (ConfigExtension) and the scraper read the same table, so a new engine is its table entry.
func EngineNames() []string {
	names := []string{EngineAuto}
	for _, e := range engines {
		names = append(names, e.name)
	}
	return names
}

// ConfigExtension checks a target's metrics.engine against the normalisation table; the
// engine package hands it to config.Load.
type ConfigExtension struct{}

var _ config.Extension = ConfigExtension{}

// Defaults implements config.Extension; metrics.engine's default (auto) is config's own.
func (ConfigExtension) Defaults(*config.Target, func(string) bool) {}

// Check implements config.Extension.
func (ConfigExtension) Check(t *config.Target, _ func(string) bool, report config.Reporter) {
	if t.Metrics == nil {
		return
	}
	for _, n := range EngineNames() {
		if t.Metrics.Engine == n {
			return
		}
	}
	report("metrics.engine", "must be one of %s, not %s", strings.Join(EngineNames(), ", "), config.Quote(t.Metrics.Engine))
}
