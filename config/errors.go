package config

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a configuration, located by the field path it concerns
// (e.g. "targets[1].traffic.rate") and, when the configuration came from YAML, the line and
// column of that field (or of the nearest enclosing one that is present in the file).
type FieldError struct {
	// Path is the field path; empty when the problem concerns the document as a whole.
	Path string
	// Line is the 1-based line number; 0 when unknown (e.g. a Config built in code).
	Line int
	// Column is the 1-based column number; 0 when unknown.
	Column int
	// Msg says what is wrong, and where it helps, what to do instead. It never holds a secret.
	Msg string
}

// Error formats the error as "path (line N): msg", dropping the parts that are unknown.
func (e *FieldError) Error() string {
	switch {
	case e.Path != "" && e.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", e.Path, e.Line, e.Msg)
	case e.Path != "":
		return e.Path + ": " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	default:
		return e.Msg
	}
}

// Errors is every problem found in a configuration. Parse, Load, Validate and LoadSecrets
// return it (never empty) so that a user fixes all problems in one round; retrieve it with
// errors.As.
type Errors []*FieldError

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// err returns es as an error, or nil when there is nothing in it (a nil Errors stored in an
// error interface would not compare equal to nil).
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// sorted orders the errors by position so that they read top to bottom like the file; errors
// without a position come first, and the order among equals is kept.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
	return es
}

// quote shows a user-supplied value in an error message, shortened so that one long value
// cannot bury the message. Never call it on a secret.
func quote(s string) string {
	const max = 40
	r := []rune(s)
	if len(r) > max {
		s = string(r[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}
