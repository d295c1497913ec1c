package prober

import (
	"encoding/json"
	"errors"
)

// walker reads one JSON text in a single pass, checking its syntax as it goes: json.Valid's
// separate pass over every chunk was half of the decoding time (docs/benchmarks.md). A syntax
// error is sticky: it is recorded and the walker jumps to the end, so the readers built on it
// see a value of no type (peek returns 0) and stop; finish then reports the syntax error
// before any type error. It accepts exactly what json.Valid accepts, nesting limit
// included (FuzzWalkerSyntax holds the two together).
type walker struct {
	b []byte
	i int
	// lastEscaped says the string str returned last had escapes.
	lastEscaped bool
	// key holds an unescaped key (rare), reused.
	key []byte
	// syntax is set at the first syntax error.
	syntax bool
	// depth counts the objects and arrays open at w.i.
	depth int
}

// maxJSONDepth is encoding/json's nesting limit: deeper input is not valid JSON there.
const maxJSONDepth = 10000

// errJSONSyntax is reported when encoding/json, asked again for the error's text, finds none
// (it never should: the walker and json.Valid agree).
var errJSONSyntax = errors.New("invalid JSON")

// fail records a syntax error and moves to the end of the input.
func (w *walker) fail() {
	w.syntax = true
	w.i = len(w.b)
}

// finish ends a walk that returned err: a syntax error anywhere in the input if there is one
// (encoding/json's text, with its offset), else err, else a syntax error if anything but
// whitespace follows the value. A walk that stopped at a type error has not read the rest, so
// the rare error path asks json.Valid.
func (w *walker) finish(err error) error {
	if !w.syntax {
		if err != nil {
			w.syntax = !json.Valid(w.b)
		} else if w.ws(); w.i < len(w.b) {
			w.fail()
		}
	}
	if w.syntax {
		var v any
		if jerr := json.Unmarshal(w.b, &v); jerr != nil {
			return jerr
		}
		return errJSONSyntax
	}
	return err
}

func (w *walker) ws() {
	if w.i < len(w.b) && w.b[w.i] > ' ' {
		return // servers send compact JSON: usually no whitespace at all
	}
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value, or 0 at the end (a syntax error: a value
// was due).
func (w *walker) peek() byte {
	w.ws()
	if w.i >= len(w.b) {
		w.fail()
		return 0
	}
	return w.b[w.i]
}

// expect consumes c after optional whitespace, or fails.
func (w *walker) expect(c byte) bool {
	w.ws()
	if w.i < len(w.b) && w.b[w.i] == c {
		w.i++
		return true
	}
	w.fail()
	return false
}

// str reads the string at w.i and returns its raw content (escapes left as they are). A
// string must start at w.i; control characters and unknown escapes are syntax errors, and
// invalid UTF-8 is not (encoding/json replaces it when decoding). The scan is the fast path's
// (scanString).
func (w *walker) str() []byte {
	if w.i >= len(w.b) || w.b[w.i] != '"' {
		w.fail()
		return nil
	}
	start := w.i + 1
	end, escaped := scanString(w.b, start)
	if end < 0 {
		w.fail()
		return nil
	}
	w.i, w.lastEscaped = end+1, escaped
	return w.b[start:end]
}

// number consumes a JSON number at w.i: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// (scanNumber).
func (w *walker) number() {
	end := scanNumber(w.b, w.i)
	if end < 0 {
		w.fail()
		return
	}
	w.i = end
}

// literal consumes true, false or null at w.i.
func (w *walker) literal(word string) {
	if len(w.b)-w.i >= len(word) && string(w.b[w.i:w.i+len(word)]) == word {
		w.i += len(word)
		return
	}
	w.fail()
}

// skip moves past one value, checking it. Its loops are written out, not object's and array's
// callbacks: most of a chunk is values nobody reads.
func (w *walker) skip() {
	switch c := w.peek(); {
	case c == '"':
		w.str()
	case c == '{':
		for ok := w.open('}'); ok; ok = w.more('}') {
			if _, ok := w.member(); !ok {
				return
			}
			w.skip()
		}
		w.leave()
	case c == '[':
		for ok := w.open(']'); ok; ok = w.more(']') {
			w.skip()
		}
		w.leave()
	case c == 't':
		w.literal("true")
	case c == 'f':
		w.literal("false")
	case c == 'n':
		w.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		w.number()
	default:
		w.fail()
	}
}

// open enters an object or array at w.i and reports whether it has members: false when it is
// empty (then already closed by the byte close) or past the nesting limit (a syntax error).
// The caller calls leave when it is done.
func (w *walker) open(close byte) bool {
	w.i++
	w.depth++
	if w.depth > maxJSONDepth {
		w.fail()
		return false
	}
	w.ws()
	if w.i < len(w.b) && w.b[w.i] == close {
		w.i++
		return false
	}
	return true
}

func (w *walker) leave() { w.depth-- }

// more consumes what follows a member or an element: true after a comma, false after close;
// anything else is a syntax error (false, w.syntax set).
func (w *walker) more(close byte) bool {
	w.ws()
	if w.i < len(w.b) {
		switch w.b[w.i] {
		case ',':
			w.i++
			return true
		case close:
			w.i++
			return false
		}
	}
	w.fail()
	return false
}

// member reads an object member's key and its colon, leaving w.i at the value; ok is false
// at a syntax error. An escaped key (rare) is unescaped into w.key.
func (w *walker) member() (key []byte, ok bool) {
	w.ws()
	key = w.str()
	if w.syntax {
		return nil, false
	}
	if w.lastEscaped {
		var s string
		_ = json.Unmarshal(w.b[w.i-len(key)-2:w.i], &s)
		w.key = append(w.key[:0], s...)
		key = w.key
	}
	return key, w.expect(':')
}

// object calls member for each key of the object at w.i; member consumes the value. It stops
// at member's first error; a syntax error stops it too (w.syntax, for finish to report). The
// hottest readers loop with open, member and more themselves instead.
func (w *walker) object(member func(key []byte) error) error {
	defer w.leave()
	for ok := w.open('}'); ok; ok = w.more('}') {
		key, ok := w.member()
		if !ok {
			return nil
		}
		if err := member(key); err != nil {
			return err
		}
	}
	return nil
}

// array calls elem for each element of the array at w.i; elem consumes it.
func (w *walker) array(elem func() error) error {
	defer w.leave()
	for ok := w.open(']'); ok; ok = w.more(']') {
		if err := elem(); err != nil {
			return err
		}
	}
	return nil
}
