package prober

import (
	"encoding/json"
	"strings"
	"testing"
)

// validByWalker reports whether the walker accepts data as one JSON value.
func validByWalker(data []byte) bool {
	w := walker{b: data}
	w.skip()
	return w.finish(nil) == nil
}

func walkerSyntaxCases() []string {
	return []string{
		``, ` `, `{}`, ` {} `, `{`, `}`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{,}`, `{"a":1 "b":2}`,
		`[]`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, `[[[]]`, `"x"`, `"x`, `"\u00e9"`, `"\u00g9"`, `"\u12"`,
		`"\x"`, `"\/\b\f\n\r\t\\\""`, "\"a\tb\"", "\"a\x7fb\"", "\"\xff\xfe\"", "\"a\x00\"",
		`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1e+5`, `1E-5`, `-1.5e10`, `1x`, `+1`,
		`true`, `tru`, `truex`, `false`, `null`, `nul`, `nulll`, `{"a":true}`, `{"a":nul}`,
		`{"a":[1,{"b":null}],"c":"d"}`, `{} {}`, `{}x`, "{}\n", "\t{\r\n\"a\"\t:\n1}", `1 2`, `"a" "b"`,
		`{"a":{"b":{"c":[{"d":"\""}]}}}`, `{"\"":1}`, `{"a\u0041":1}`, "\xef\xbb\xbf{}",
	}
}

func TestWalkerSyntaxMatchesEncodingJSON(t *testing.T) {
	cases := walkerSyntaxCases()
	// encoding/json's nesting limit: 10,000 levels are valid, one more is not.
	for _, n := range []int{9999, 10000, 10001} {
		cases = append(cases, strings.Repeat("[", n)+strings.Repeat("]", n))
		cases = append(cases, strings.Repeat(`{"a":`, n)+"1"+strings.Repeat("}", n))
	}
	for _, c := range cases {
		if got, want := validByWalker([]byte(c)), json.Valid([]byte(c)); got != want {
			name := c
			if len(name) > 40 {
				name = name[:40] + "..."
			}
			t.Errorf("%q: walker valid %v, json.Valid %v", name, got, want)
		}
	}
}

// TestWalkerSyntaxErrorFirst: a syntax error after a type error is still reported as the
// syntax error, with encoding/json's offset.
func TestWalkerSyntaxErrorFirst(t *testing.T) {
	var f chunkFacts
	err := decodeChunk([]byte(`{"choices":7,"x":}`), &f)
	var syn *json.SyntaxError
	if !asSyntax(err, &syn) {
		t.Fatalf("error %v (%T), want a *json.SyntaxError", err, err)
	}
	if err := decodeChunk([]byte(`{"choices":7}`), &f); err == nil || asSyntax(err, &syn) {
		t.Fatalf("a type error came back as %v", err)
	}
}

func asSyntax(err error, target **json.SyntaxError) bool {
	s, ok := err.(*json.SyntaxError)
	*target = s
	return ok
}

// FuzzWalkerSyntax holds the walker's syntax check to json.Valid on arbitrary input.
func FuzzWalkerSyntax(f *testing.F) {
	for _, c := range walkerSyntaxCases() {
		f.Add([]byte(c))
	}
	for _, c := range chunkCases() {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validByWalker(data), json.Valid(data); got != want {
			t.Fatalf("%q: walker valid %v, json.Valid %v", data, got, want)
		}
	})
}

// TestHasStringSpecial checks the eight-byte test against the byte table for every byte
// value at every position, with plain bytes around it.
func TestHasStringSpecial(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			x := uint64(0)
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(b[i])
			}
			want := !plainStringByte[c]
			if got := hasStringSpecial(x); got != want {
				t.Errorf("byte %#x at %d: special %v, want %v", c, pos, got, want)
			}
		}
	}
}
