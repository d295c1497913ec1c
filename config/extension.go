package config

// Extension supplies what this package cannot know by itself: the kinds that registries in
// the packages that build them define (API flavours in prober, pacers in traffic, model-server
// engines in collector/server). Each of those packages implements one; the engine package
// hands them all to Load and Parse, so that validation and construction read the same
// registry and an unknown name is an error that names its field and line.
//
// Extensions see a target after the generic defaults are applied and before generic
// validation, so a default an extension fills in (e.g. the API path) is validated like one
// the file gave.
type Extension interface {
	// Defaults fills the fields of t whose defaults depend on a registered kind. given reports
	// whether the file set a field, by its path relative to the target (e.g. "traffic.rate"):
	// a field written explicitly, even as zero, keeps its value.
	Defaults(t *Target, given func(field string) bool)
	// Check reports every problem of t through report, with field paths relative to the
	// target (e.g. "traffic.burstiness", "traffic.stages[2].rate"). given is as for Defaults.
	Check(t *Target, given func(field string) bool, report Reporter)
}

// Reporter records one problem of a field (its path relative to the target); the message is
// formatted like fmt.Sprintf and must never hold a secret.
type Reporter func(field, format string, args ...any)

// Quote shows a user-supplied value in an error message the way every config error does:
// quoted and shortened. Extensions use it so that their messages read like the rest. Never
// call it on a secret.
func Quote(s string) string { return quote(s) }
