package prober

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
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
	err := decodeChunk([]byte(`{"choices":7,"x":}`), &f, nil)
	var syn *json.SyntaxError
	if !asSyntax(err, &syn) {
		t.Fatalf("error %v (%T), want a *json.SyntaxError", err, err)
	}
	if err := decodeChunk([]byte(`{"choices":7}`), &f, nil); err == nil || asSyntax(err, &syn) {
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

// TestStringSpecials checks that the lowest byte the eight-byte test flags is the first byte
// the byte table calls special: for every pair of byte values at every pair of positions, with
// plain bytes around them (a borrow from the first may flag the second, which must not matter),
// and for random words.
func TestStringSpecials(t *testing.T) {
	first := func(b []byte) int {
		for i, c := range b {
			if !plainStringByte[c] {
				return i
			}
		}
		return 8
	}
	check := func(b []byte) bool {
		m := stringSpecials(binary.LittleEndian.Uint64(b))
		got := 8
		if m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if want := first(b); got != want {
			t.Errorf("%q: first special at %d, want %d", b, got, want)
			return false
		}
		return true
	}
	b := make([]byte, 8)
	for p := range 8 {
		for q := p; q < 8; q++ {
			for c := range 256 {
				for d := range 256 {
					copy(b, "abcdefgh")
					b[p], b[q] = byte(c), byte(d)
					if !check(b) {
						return
					}
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		if !check(b) {
			return
		}
	}
}
