package traffic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Data set formats, as written in request.dataset.format.
const (
	// DatasetShareGPT is the ShareGPT JSON: an array of {"conversations": [{"from", "value"}]}.
	DatasetShareGPT = "sharegpt"
	// DatasetJSONL is one {"prompt" | "messages", "max_tokens"} object per line.
	DatasetJSONL = "jsonl"
)

// Limits of what a data set may hold.
const (
	// MaxDatasetBytes bounds a ShareGPT file, which is read whole (the readers keep only the
	// first turns).
	MaxDatasetBytes = 2 << 30
	// MaxDatasetLine is the longest line a JSONL data set may have, in bytes.
	MaxDatasetLine = 16 << 20
)

// DatasetFormatFor returns the format a data set file's extension implies ("" for none).
func DatasetFormatFor(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return DatasetShareGPT
	case ".jsonl":
		return DatasetJSONL
	}
	return ""
}

// Counter counts a prompt's tokens: the word approximation (CountWords) or a real tokenizer.
type Counter func(s string) int

// CountWords counts whitespace-separated words, the simulator's tokens.
func CountWords(s string) int { return countWords(s) }

// DatasetFilter keeps the entries whose lengths are within bounds (0: no bound).
type DatasetFilter struct {
	MinInput, MaxInput, MinOutput, MaxOutput int
}

func (f DatasetFilter) keep(in, out int) bool {
	return (f.MinInput == 0 || in >= f.MinInput) && (f.MaxInput == 0 || in <= f.MaxInput) &&
		(out == 0 || ((f.MinOutput == 0 || out >= f.MinOutput) && (f.MaxOutput == 0 || out <= f.MaxOutput)))
}

// Dataset is a set of prompts read from a file, immutable once read.
type Dataset struct {
	// Name is the file it came from.
	Name string
	// Skipped counts malformed entries left out (skip_invalid); Filtered the entries left out
	// by the length filters or for having no prompt (a ShareGPT conversation without a human
	// turn followed by a reply).
	Skipped, Filtered int

	entries []datasetEntry
}

type datasetEntry struct {
	prompt   string    // the prompt, or the messages' contents joined by newlines
	messages []Message // nil for a plain prompt
	in       int       // prompt tokens as the counter counts them
	out      int       // the output length; 0 leaves it to request.max_tokens
}

// Len returns the number of entries.
func (d *Dataset) Len() int { return len(d.entries) }

// Entry returns entry i's prompt, messages (nil for a plain prompt), counted prompt tokens and
// output length (0: none given).
func (d *Dataset) Entry(i int) (prompt string, messages []Message, in, out int) {
	e := d.entries[i]
	return e.prompt, e.messages, e.in, e.out
}

// LoadDataset reads the data set at path in format (DatasetFormatFor(path) when empty),
// counting lengths with count (CountWords when nil) and keeping what filter admits.
func LoadDataset(path, format string, filter DatasetFilter, count Counter, skipInvalid bool) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	if format == "" {
		format = DatasetFormatFor(path)
	}
	return ReadDataset(f, path, format, filter, count, skipInvalid)
}

// ReadDataset reads a data set in format from r; name is the file name used in errors, which
// name the file and line of a malformed entry.
func ReadDataset(r io.Reader, name, format string, filter DatasetFilter, count Counter, skipInvalid bool) (*Dataset, error) {
	if count == nil {
		count = CountWords
	}
	d := &Dataset{Name: name}
	var err error
	switch format {
	case DatasetShareGPT:
		err = d.readShareGPT(r, filter, count, skipInvalid)
	case DatasetJSONL:
		err = d.readJSONL(r, filter, count, skipInvalid)
	default:
		return nil, fmt.Errorf("dataset %s: unknown format %q (want %s or %s)", name, format, DatasetShareGPT, DatasetJSONL)
	}
	if err != nil {
		return nil, err
	}
	if len(d.entries) == 0 {
		return nil, fmt.Errorf("dataset %s: no entry to send (%d malformed, %d filtered out by length or without a prompt)", name, d.Skipped, d.Filtered)
	}
	d.entries = clip(d.entries)
	return d, nil
}

// shareGPTEntry is the part of a ShareGPT conversation we read.
type shareGPTEntry struct {
	Conversations []struct {
		From  *string `json:"from"`
		Value *string `json:"value"`
	} `json:"conversations"`
}

// lineCounter turns byte offsets of one buffer into line numbers, moving forward only.
type lineCounter struct {
	data       []byte
	off, lines int
}

func (c *lineCounter) at(off int) int {
	off = min(off, len(c.data))
	if off < c.off {
		c.off, c.lines = 0, 0
	}
	c.lines += bytes.Count(c.data[c.off:off], []byte{'\n'})
	c.off = off
	return c.lines + 1
}

// readShareGPT reads the whole file (it is one JSON array) and keeps each conversation's
// first human turn as the prompt and the length of the reply that follows as the output.
func (d *Dataset) readShareGPT(r io.Reader, filter DatasetFilter, count Counter, skipInvalid bool) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxDatasetBytes+1))
	if err != nil {
		return fmt.Errorf("dataset %s: %w", d.Name, err)
	}
	if len(data) > MaxDatasetBytes {
		return fmt.Errorf("dataset %s: larger than %d bytes", d.Name, MaxDatasetBytes)
	}
	lines := &lineCounter{data: data}
	dec := json.NewDecoder(bytes.NewReader(data))
	syntax := func(err error) error {
		off := int(dec.InputOffset())
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = int(se.Offset)
		}
		return &RowError{d.Name, lines.at(off), "not ShareGPT JSON (an array of {\"conversations\": [{\"from\", \"value\"}]}): " + jsonProblem(err)}
	}
	tok, err := dec.Token()
	if err != nil {
		return syntax(err)
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		return &RowError{d.Name, 1, "not ShareGPT JSON: want an array of conversations"}
	}
	for dec.More() {
		start := int(dec.InputOffset())
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntax(err)
		}
		// The element starts after the separator and white space that precede it.
		for start < len(data) && (data[start] == ',' || data[start] == ' ' || data[start] == '\n' || data[start] == '\r' || data[start] == '\t') {
			start++
		}
		var e shareGPTEntry
		problem := ""
		if err := json.Unmarshal(raw, &e); err != nil {
			problem = "conversation is not {\"conversations\": [{\"from\", \"value\"}]}: " + jsonProblem(err)
		} else {
			for i, turn := range e.Conversations {
				if turn.From == nil || turn.Value == nil {
					problem = fmt.Sprintf("conversations[%d] needs string from and value", i)
					break
				}
			}
		}
		if problem != "" {
			if !skipInvalid {
				return &RowError{d.Name, lines.at(start), problem}
			}
			d.Skipped++
			continue
		}
		prompt, reply, ok := "", "", false
		for i := 0; i+1 < len(e.Conversations); i++ {
			from, next := *e.Conversations[i].From, *e.Conversations[i+1].From
			if (from == "human" || from == "user") && (next == "gpt" || next == "chatgpt" || next == "assistant") {
				prompt, reply, ok = *e.Conversations[i].Value, *e.Conversations[i+1].Value, true
				break
			}
		}
		in, out := 0, 0
		if ok {
			in, out = count(prompt), count(reply)
		}
		if !ok || in == 0 || out == 0 || !filter.keep(in, out) {
			d.Filtered++
			continue
		}
		d.entries = append(d.entries, datasetEntry{prompt: prompt, in: in, out: out})
	}
	if _, err := dec.Token(); err != nil {
		return syntax(err)
	}
	return nil
}

// jsonlEntry is one line of a JSONL data set.
type jsonlEntry struct {
	Prompt    *string    `json:"prompt"`
	Messages  []*Message `json:"messages"`
	MaxTokens *int       `json:"max_tokens"`
}

func (d *Dataset) readJSONL(r io.Reader, filter DatasetFilter, count Counter, skipInvalid bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxDatasetLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		e, err := parseJSONLEntry(b, count)
		if err != nil {
			if !skipInvalid {
				return &RowError{d.Name, line, err.Error()}
			}
			d.Skipped++
			continue
		}
		if !filter.keep(e.in, e.out) {
			d.Filtered++
			continue
		}
		d.entries = append(d.entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &RowError{d.Name, line + 1, fmt.Sprintf("line longer than %d bytes", MaxDatasetLine)}
		}
		return fmt.Errorf("dataset %s: %w", d.Name, err)
	}
	return nil
}

func parseJSONLEntry(b []byte, count Counter) (datasetEntry, error) {
	var e jsonlEntry
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&e); err != nil {
		return datasetEntry{}, fmt.Errorf(`not a JSON object with "prompt" or "messages": %s`, jsonProblem(err))
	}
	if dec.More() {
		return datasetEntry{}, errors.New("more than one JSON value on the line")
	}
	var out datasetEntry
	switch {
	case e.Prompt != nil && e.Messages != nil:
		return out, errors.New(`has both "prompt" and "messages": give one`)
	case e.Prompt != nil:
		if strings.TrimSpace(*e.Prompt) == "" {
			return out, errors.New(`"prompt" is empty`)
		}
		out.prompt = *e.Prompt
	case len(e.Messages) > 0:
		var joined []string
		for i, m := range e.Messages {
			if m == nil || m.Role == "" || m.Content == "" {
				return out, fmt.Errorf(`messages[%d] needs a role and a content`, i)
			}
			out.messages = append(out.messages, *m)
			joined = append(joined, m.Content)
		}
		out.prompt = strings.Join(joined, "\n")
	default:
		return out, errors.New(`needs "prompt" (a string) or "messages" (a list of {role, content})`)
	}
	if e.MaxTokens != nil {
		if *e.MaxTokens < 1 || *e.MaxTokens > MaxTraceTokens {
			return out, fmt.Errorf(`"max_tokens" %d must be ≥ 1 and ≤ %d`, *e.MaxTokens, MaxTraceTokens)
		}
		out.out = *e.MaxTokens
	}
	out.in = count(out.prompt)
	return out, nil
}

// DatasetSourceOptions configure NewDatasetSource.
type DatasetSourceOptions struct {
	// MaxTokens is the output cap of entries that give none.
	MaxTokens int
	// CacheBust starts every prompt (the first message's content) with a unique nonce.
	CacheBust bool
	// Seed picks the entries and makes the nonces and adapters reproducible.
	Seed uint64
	// Adapters optionally splits the traffic over LoRA adapters.
	Adapters []WeightedAdapter
}

// NewDatasetSource returns a Source that sends, for request n, an entry of d drawn uniformly
// (with replacement) from the seed: a pure function of (seed, n), safe for concurrent use.
// PromptTokens is the entry's counted length (plus one for the nonce), MaxTokens its output
// length or opts.MaxTokens.
func NewDatasetSource(d *Dataset, opts DatasetSourceOptions) Source {
	return &datasetSource{d: d, opts: opts, sampleKey: mix64(opts.Seed ^ streamSample),
		nonceKey: mix64(opts.Seed ^ streamNonce), split: newAdapterSplit(opts.Adapters, mix64(opts.Seed^streamAdapters))}
}

type datasetSource struct {
	d                   *Dataset
	opts                DatasetSourceOptions
	sampleKey, nonceKey uint64
	split               adapterSplit
}

// DatasetRowsSkipped returns how many malformed entries the data set behind src left out
// (skip_invalid), so the target can count them; 0 for any other source.
func DatasetRowsSkipped(src Source) int {
	if s, ok := src.(*datasetSource); ok {
		return s.d.Skipped
	}
	return 0
}

func (s *datasetSource) Next(n uint64) Request {
	e := s.d.entries[hashIndex(s.sampleKey, n)%uint64(len(s.d.entries))]
	r := Request{Prompt: e.prompt, Messages: e.messages, PromptTokens: e.in, MaxTokens: e.out, Adapter: s.split.pick(n)}
	if r.MaxTokens == 0 {
		r.MaxTokens = s.opts.MaxTokens
	}
	if s.opts.CacheBust {
		nonce := nonceFor(s.nonceKey, n)
		r.Prompt = nonce + " " + r.Prompt
		r.PromptTokens++
		if len(r.Messages) > 0 {
			r.Messages = append([]Message(nil), r.Messages...)
			r.Messages[0].Content = nonce + " " + r.Messages[0].Content
		}
	}
	return r
}

// nonceFor returns the cache-busting nonce of request n: "req-" and 16 hex digits of a
// bijective hash of n.
func nonceFor(key, n uint64) string {
	const hex = "0123456789abcdef"
	var buf [nonceLen]byte
	copy(buf[:], noncePrefix)
	v := hashIndex(key, n)
	for i := nonceLen - 1; i >= len(noncePrefix); i-- {
		buf[i] = hex[v&0xf]
		v >>= 4
	}
	return string(buf[:])
}
