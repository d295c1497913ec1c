package prober

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// The fast path of decodeChunk. The walker's readers keep their position in the walker and
// call a method for every token, so a chunk of 300 bytes costs a few hundred loads and stores
// of that position and as many calls. decodeChunkFast reads the same chunk in one loop with
// the position in a local variable and an explicit stack of what each open object or array
// is. It takes only the chunks it can settle for sure: valid JSON with every field inferprobe
// reads of the right type, and no escaped key. For anything else — a syntax or type error,
// an escaped key, deep nesting — it returns false and decodeChunk reads the chunk again with
// the walker, which reports the error as encoding/json would. Where it returns true its facts
// are the walker's (FuzzDecodeChunkPaths holds the two together), down to duplicate keys: it
// does the same things in the same order.

// chunkRole is what an open object or array of a chunk is, for the fields in it.
type chunkRole uint8

const (
	roleSkip            chunkRole = iota // a value nobody reads: only its syntax counts
	roleTop                              // the chunk
	roleChoices                          // the choices array
	roleChoice                           // one choice
	roleDelta                            // a choice's delta
	roleUsage                            // usage
	roleReasoningDetail                  // usage.completion_tokens_details
	roleCachedDetail                     // usage.prompt_tokens_details
)

// chunkField is what a value is, by its key and the role of the object it is in.
type chunkField uint8

const (
	fieldNone             chunkField = iota // not read: any JSON
	fieldTop                                // the chunk itself: an object here
	fieldChoices                            // array or null
	fieldUsage                              // object or null
	fieldError                              // any JSON; not null marks an error chunk
	fieldObject                             // string or null
	fieldMessage                            // string or null
	fieldModel                              // string or null
	fieldChoice                             // an element of choices: object or null
	fieldDelta                              // object or null
	fieldText                               // string or null: answer text
	fieldReasoning                          // string or null: reasoning text
	fieldFinish                             // string or null
	fieldPromptTokens                       // integer or null
	fieldCompletionTokens                   // integer or null
	fieldReasoningDetails                   // object or null
	fieldCachedDetails                      // object or null
	fieldReasoningTokens                    // integer or null
	fieldCachedTokens                       // integer or null
)

// fastMaxDepth bounds the nesting the fast path follows; deeper chunks go to the walker.
const fastMaxDepth = 32

// fieldOf maps a key of an object of role r to its field, matching as the walker does. Each
// role has a few names, and keyIs compares lengths first, so a chain beats a string switch.
func fieldOf(r chunkRole, key []byte) chunkField {
	switch r {
	case roleTop:
		switch {
		case keyIs(key, "choices"):
			return fieldChoices
		case keyIs(key, "usage"):
			return fieldUsage
		case keyIs(key, "error"):
			return fieldError
		case keyIs(key, "object"):
			return fieldObject
		case keyIs(key, "message"):
			return fieldMessage
		case keyIs(key, "model"):
			return fieldModel
		}
	case roleChoice:
		switch {
		case keyIs(key, "delta"):
			return fieldDelta
		case keyIs(key, "text"):
			return fieldText
		case keyIs(key, "finish_reason"):
			return fieldFinish
		}
	case roleDelta:
		switch {
		case keyIs(key, "content"):
			return fieldText
		case keyIs(key, "reasoning_content"), keyIs(key, "reasoning"):
			return fieldReasoning
		}
	case roleUsage:
		switch {
		case keyIs(key, "prompt_tokens"):
			return fieldPromptTokens
		case keyIs(key, "completion_tokens"):
			return fieldCompletionTokens
		case keyIs(key, "completion_tokens_details"):
			return fieldReasoningDetails
		case keyIs(key, "prompt_tokens_details"):
			return fieldCachedDetails
		}
	case roleReasoningDetail:
		if keyIs(key, "reasoning_tokens") {
			return fieldReasoningTokens
		}
	case roleCachedDetail:
		if keyIs(key, "cached_tokens") {
			return fieldCachedTokens
		}
	}
	return fieldNone
}

// chunkMemo is where the fast path stood in an earlier chunk, to start the next one there when
// it begins with the same bytes. The chunks of one stream repeat everything up to the text:
// {"id":"chatcmpl-…","object":"chat.completion.chunk","created":…,"model":"…","choices":
// [{"index":0,"delta":{"content": — half of a vLLM chunk. The fast path reads a chunk left
// to right, and what it has found and where it is after a prefix depends on that prefix's
// bytes alone (its one look past a byte, the eight-byte string test, cannot change a result:
// see stringSpecials). So a chunk that begins with the saved prefix is read from the saved
// state on, the prefix checked with one comparison instead of parsed. The state is taken at
// the chunk's first text value, and the prefix runs to that value's first byte.
// memoMaxPrefix bounds the prefix a memo keeps (a pooled event holds it): real prefixes are
// a few hundred bytes.
const memoMaxPrefix = 2048

type chunkMemo struct {
	prefix []byte // empty: nothing saved
	i      int
	depth  int
	roles  [fastMaxDepth]chunkRole
	isObj  [fastMaxDepth]bool
	field  chunkField
	facts  chunkFacts
	hits   int // chunks started from the memo (for tests)
}

// decodeChunkFast reads data into f and reports whether it could; see above. memo, if not
// nil, is the stream's chunkMemo: used when data begins with its prefix, and saved anew
// otherwise.
func decodeChunkFast(data []byte, f *chunkFacts, memo *chunkMemo) bool {
	*f = chunkFacts{}
	b := data
	var (
		roles [fastMaxDepth]chunkRole
		isObj [fastMaxDepth]bool
		depth int
		field = fieldTop
		i     int
		// saved says the memo needs no saving in this chunk: there is none, or it was used.
		saved = memo == nil
	)
	if !saved && len(memo.prefix) > 0 && len(b) >= len(memo.prefix) && bytes.Equal(b[:len(memo.prefix)], memo.prefix) {
		i, depth, field, roles, isObj, *f = memo.i, memo.depth, memo.field, memo.roles, memo.isObj, memo.facts
		memo.hits++
		saved = true
	} else if i = skipWS(b, 0); i >= len(b) || b[i] != '{' {
		return false // null, another type or a syntax error: the walker's
	}
	// Each turn of the loop reads one value at b[i], whose field is field, then what follows
	// it up to the next value.
	for {
		if i >= len(b) {
			return false
		}
		// Everything above this point reads no byte past b[i] (and no len(b)) in a way that
		// could change its result: the memo relies on it. Keep it so.
		if !saved && (field == fieldText || field == fieldReasoning) && i < memoMaxPrefix {
			saved = true
			memo.prefix = append(memo.prefix[:0], b[:i+1]...)
			memo.i, memo.depth, memo.field, memo.roles, memo.isObj, memo.facts = i, depth, field, roles, isObj, *f
		}
		switch c := b[i]; c {
		case '"':
			end, escaped := scanString(b, i+1)
			if end < 0 {
				return false
			}
			raw := b[i+1 : end]
			switch field {
			case fieldNone:
			case fieldError:
				f.isError = true
			case fieldObject:
				if string(raw) == "error" {
					f.isError = true
				}
			case fieldMessage:
			case fieldModel:
				f.modelStart, f.modelEnd, f.modelEscaped = i+1, end, escaped
			case fieldText:
				if len(raw) > 0 {
					f.content = true
				}
			case fieldReasoning:
				if len(raw) > 0 {
					f.reasoning = true
				}
			case fieldFinish:
				if len(raw) > 0 && f.finish == "" {
					f.finish = normaliseFinishBytes(raw, escaped)
				}
			default:
				return false // a type error
			}
			i = end + 1
		case '{', '[':
			var r chunkRole
			switch {
			case field == fieldNone:
				r = roleSkip
			case field == fieldError:
				f.isError = true
				r = roleSkip
			case field == fieldTop:
				r = roleTop
			case c == '[' && field == fieldChoices:
				r = roleChoices
			case c == '{' && field == fieldUsage:
				f.hasUsage = true
				r = roleUsage
			case c == '{' && field == fieldChoice:
				r = roleChoice
			case c == '{' && field == fieldDelta:
				r = roleDelta
			case c == '{' && field == fieldReasoningDetails:
				f.hasReasoningTokens = true
				r = roleReasoningDetail
			case c == '{' && field == fieldCachedDetails:
				f.hasCachedTokens = true
				r = roleCachedDetail
			default:
				return false // a type error
			}
			if depth == fastMaxDepth {
				return false
			}
			roles[depth], isObj[depth] = r, c == '{'
			depth++
			i = skipWS(b, i+1)
			if i >= len(b) {
				return false
			}
			if c == '{' && b[i] == '}' || c == '[' && b[i] == ']' {
				depth--
				i++
				break // empty: what follows it is read below
			}
			if c == '{' {
				var ok bool
				if i, field, ok = readKey(b, i, r); !ok {
					return false
				}
			} else if r == roleChoices {
				field = fieldChoice
			} else {
				field = fieldNone
			}
			continue // the first member's value
		case 'n':
			if len(b)-i < 4 || string(b[i:i+4]) != "null" {
				return false
			}
			i += 4
			switch field {
			case fieldUsage:
				f.hasUsage, f.promptTokens, f.completionTokens = false, 0, 0
				f.hasReasoningTokens, f.reasoningTokens, f.hasCachedTokens, f.cachedTokens = false, 0, false, 0
			case fieldReasoningDetails:
				f.hasReasoningTokens, f.reasoningTokens = false, 0
			case fieldCachedDetails:
				f.hasCachedTokens, f.cachedTokens = false, 0
			}
		case 't', 'f':
			word := "true"
			if c == 'f' {
				word = "false"
			}
			if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
				return false
			}
			i += len(word)
			switch field {
			case fieldNone:
			case fieldError:
				f.isError = true
			default:
				return false // a type error
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			end := scanNumber(b, i)
			if end < 0 {
				return false
			}
			var dst *int
			switch field {
			case fieldNone:
			case fieldError:
				f.isError = true
			case fieldPromptTokens:
				dst = &f.promptTokens
			case fieldCompletionTokens:
				dst = &f.completionTokens
			case fieldReasoningTokens:
				dst = &f.reasoningTokens
			case fieldCachedTokens:
				dst = &f.cachedTokens
			default:
				return false // a type error
			}
			if dst != nil {
				n, ok := parseInt(b[i:end])
				if !ok {
					return false
				}
				*dst = n
			}
			i = end
		default:
			return false
		}

		// After a value: a comma and the next member or element, or the end of containers.
		for {
			i = skipWS(b, i)
			if depth == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := depth - 1
			switch b[i] {
			case ',':
				i = skipWS(b, i+1)
				if isObj[top] {
					var ok bool
					if i, field, ok = readKey(b, i, roles[top]); !ok {
						return false
					}
				} else if roles[top] == roleChoices {
					field = fieldChoice
				} else {
					field = fieldNone
				}
			case '}', ']':
				if (b[i] == '}') != isObj[top] {
					return false
				}
				depth--
				i++
				continue
			default:
				return false
			}
			break
		}
	}
}

// readKey reads an object key at b[i], its colon and the whitespace up to its value: the index
// of the value and the key's field. An escaped key (rare) is left to the walker.
func readKey(b []byte, i int, r chunkRole) (int, chunkField, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false
	}
	end, escaped := scanString(b, i+1)
	if end < 0 || escaped {
		return 0, 0, false
	}
	field := fieldOf(r, b[i+1:end])
	i = end + 1
	if i < len(b) && b[i] == ':' { // compact JSON, the usual case
		i++
	} else if i = skipWS(b, i); i < len(b) && b[i] == ':' {
		i++
	} else {
		return 0, 0, false
	}
	if i < len(b) && b[i] > ' ' {
		return i, field, true
	}
	return skipWS(b, i), field, true
}

// skipWS returns the index of the first byte at or after i that is not JSON whitespace.
func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString reads a string's content starting at b[i] (past the opening quote) and returns
// the index of its closing quote and whether it has escapes; end < 0 is a syntax error (no
// closing quote, a control character, a bad escape); walker.str is built on it. Its
// eight-byte reads look past the closing quote, but the result depends on the bytes up to it
// alone (the lowest flag is exact, and the byte loop agrees with the words), which chunkMemo
// relies on.
func scanString(b []byte, i int) (end int, escaped bool) {
	for {
		for i+8 <= len(b) {
			if m := stringSpecials(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
			i += 8
		}
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
	special:
		if i >= len(b) {
			return -1, false
		}
		switch b[i] {
		case '"':
			return i, escaped
		case '\\':
			escaped = true
			if i+1 >= len(b) {
				return -1, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1, false
				}
				i += 6
			default:
				return -1, false
			}
		default: // a control character
			return -1, false
		}
	}
}

// scanNumber returns the index past the JSON number at b[i], or -1 if there is none (the
// walker's numbers too).
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return -1
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i
}

// stringSpecials flags the bytes of x (little-endian) that are a quote, a backslash or a
// control character: the high bit of each such byte is set in the result (the classic SWAR
// tests: a byte below n sets its high bit in (x - n*ones) &^ x; a zero byte of x^c is a byte
// equal to c). A borrow can flag a byte above a flagged one, never one below, so the lowest
// flag is exact.
func stringSpecials(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (x - 0x20*ones) &^ x
	quote := x ^ '"'*ones
	backslash := x ^ '\\'*ones
	return (below | (quote-ones)&^quote | (backslash-ones)&^backslash) & highs
}

// plainStringByte marks the bytes a JSON string holds as they are: all but the quote, the
// backslash and control characters. A table, so the string loop takes one branch per byte.
var plainStringByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
