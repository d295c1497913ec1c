package traffic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Trace formats, as written in traffic.trace.format.
const (
	// TraceAzure is the AzurePublicDataset LLM inference CSV:
	// TIMESTAMP,ContextTokens,GeneratedTokens with timestamps like 2023-11-16 18:15:46.6805900.
	TraceAzure = "azure"
	// TraceMooncake is Mooncake's JSONL: one {"timestamp" (ms), "input_length",
	// "output_length", "hash_ids"} object per line.
	TraceMooncake = "mooncake"
)

// Limits of what a trace may hold, so a wrong file (a log, a binary) fails fast instead of
// eating memory.
const (
	// MaxTraceRows is the most rows one trace may have.
	MaxTraceRows = 10_000_000
	// MaxTraceLine is the longest line a trace may have, in bytes.
	MaxTraceLine = 1 << 20
	// MaxTraceTokens bounds a row's input and output lengths (as request.max_tokens is).
	MaxTraceTokens = 1 << 20
	// MooncakeBlockTokens is the number of prompt tokens one Mooncake hash id stands for.
	MooncakeBlockTokens = 512
)

// azureLayout is the AzurePublicDataset's timestamp; the parser accepts any number of
// fractional digits (the data has seven).
const azureLayout = "2006-01-02 15:04:05"

// Trace is a request trace held compactly: per row, the arrival offset from the first row
// (trace time, unscaled), the input and output lengths, and for Mooncake the row's hash ids
// (one per block of MooncakeBlockTokens prompt tokens). About 16 bytes per row plus 8 per hash
// id; it is immutable once read and safe for concurrent use.
type Trace struct {
	// Name is the file the trace came from, for messages.
	Name string
	// Format is TraceAzure or TraceMooncake.
	Format string
	// Skipped counts the malformed rows left out (only with skip_invalid).
	Skipped int

	at      []int64 // nanoseconds from the first row, non-decreasing
	in, out []int32
	// Row i's hash ids are hashes[hashAt[i]:hashAt[i+1]]; hashAt is nil when no row has any.
	hashAt []uint32
	hashes []uint64
}

// Len returns the number of rows.
func (t *Trace) Len() int { return len(t.at) }

// Row returns row i's offset from the first row (unscaled), input and output lengths.
func (t *Trace) Row(i int) (at time.Duration, input, output int) {
	return time.Duration(t.at[i]), int(t.in[i]), int(t.out[i])
}

// HashIDs returns row i's Mooncake hash ids (nil for none). The slice must not be modified.
func (t *Trace) HashIDs(i int) []uint64 {
	if t.hashAt == nil {
		return nil
	}
	return t.hashes[t.hashAt[i]:t.hashAt[i+1]:t.hashAt[i+1]]
}

// TraceFormatFor returns the format a trace file's extension implies ("" when it implies none).
func TraceFormatFor(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return TraceAzure
	case ".jsonl":
		return TraceMooncake
	}
	return ""
}

// LoadTrace reads the trace file at path in format (TraceFormatFor(path) when empty). With
// skipInvalid, malformed rows are left out and counted in Trace.Skipped; without it the first
// one is an error naming the file and line.
func LoadTrace(path, format string, skipInvalid bool) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer f.Close()
	if format == "" {
		format = TraceFormatFor(path)
	}
	return ReadTrace(f, path, format, skipInvalid)
}

// RowError is a malformed row of a trace or data set: the file, the line (from 1) and what is
// wrong.
type RowError struct {
	File string
	Line int
	Msg  string
}

func (e *RowError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ReadTrace reads a trace in format from r; name is the file name used in errors. It reads
// line by line, keeping only the compact rows.
func ReadTrace(r io.Reader, name, format string, skipInvalid bool) (*Trace, error) {
	t := &Trace{Name: name, Format: format}
	var row func(line []byte, first bool) (at int64, in, out int32, hashes []uint64, err error)
	switch format {
	case TraceAzure:
		row = parseAzureRow
	case TraceMooncake:
		var ids []uint64 // reused between rows: the trace copies them
		row = func(line []byte, _ bool) (int64, int32, int32, []uint64, error) {
			var err error
			var at int64
			var in, out int32
			at, in, out, ids, err = parseMooncakeRow(line, ids[:0])
			return at, in, out, ids, err
		}
	default:
		return nil, fmt.Errorf("trace %s: unknown format %q (want %s or %s)", name, format, TraceAzure, TraceMooncake)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxTraceLine)
	var (
		line  int
		base  int64 // the first row's absolute time, in nanoseconds
		prev  int64
		first = true
	)
	header := format == TraceAzure
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if header {
			header = false
			if err := checkAzureHeader(b); err != nil {
				return nil, &RowError{name, line, err.Error()}
			}
			continue
		}
		at, in, out, hashes, err := row(b, first)
		switch {
		case err != nil || first:
		case at < prev:
			err = fmt.Errorf("timestamp is earlier than the row before (rows must be sorted by time)")
		case at-base < 0: // the subtraction overflowed
			err = fmt.Errorf("timestamp is more than %.0f years after the first row's", time.Duration(math.MaxInt64).Hours()/24/365.25)
		}
		if err == nil && len(t.at) >= MaxTraceRows {
			return nil, &RowError{name, line, fmt.Sprintf("more than %d rows", MaxTraceRows)}
		}
		if err != nil {
			if !skipInvalid {
				return nil, &RowError{name, line, err.Error()}
			}
			t.Skipped++
			continue
		}
		if first {
			base, first = at, false
		}
		prev = at
		t.at = append(t.at, at-base)
		t.in = append(t.in, in)
		t.out = append(t.out, out)
		if len(hashes) > 0 && t.hashAt == nil {
			// The leading 0 and one (empty) end per earlier row: the current row is already
			// in t.at, so that is len(t.at) zeros.
			t.hashAt = make([]uint32, len(t.at), cap(t.at)+1)
		}
		if t.hashAt != nil {
			if len(t.hashes)+len(hashes) > math.MaxUint32 {
				return nil, &RowError{name, line, "too many hash ids in the trace"}
			}
			t.hashes = append(t.hashes, hashes...)
			t.hashAt = append(t.hashAt, uint32(len(t.hashes)))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &RowError{name, line + 1, fmt.Sprintf("line longer than %d bytes", MaxTraceLine)}
		}
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	if len(t.at) == 0 {
		if t.Skipped > 0 {
			return nil, fmt.Errorf("trace %s: no valid rows (%d skipped)", name, t.Skipped)
		}
		return nil, fmt.Errorf("trace %s: no rows", name)
	}
	// Drop the slack the appends left: a long trace keeps only what it needs.
	t.at, t.in, t.out = clip(t.at), clip(t.in), clip(t.out)
	t.hashAt, t.hashes = clip(t.hashAt), clip(t.hashes)
	return t, nil
}

func clip[T any](s []T) []T {
	if cap(s) == len(s) {
		return s
	}
	return append(make([]T, 0, len(s)), s...)
}

// checkAzureHeader accepts the data set's header (TIMESTAMP,ContextTokens,GeneratedTokens).
func checkAzureHeader(b []byte) error {
	cols := strings.Split(string(b), ",")
	if len(cols) != 3 || !strings.EqualFold(strings.TrimSpace(cols[0]), "TIMESTAMP") ||
		!strings.EqualFold(strings.TrimSpace(cols[1]), "ContextTokens") ||
		!strings.EqualFold(strings.TrimSpace(cols[2]), "GeneratedTokens") {
		return fmt.Errorf("header must be TIMESTAMP,ContextTokens,GeneratedTokens (the AzurePublicDataset LLM trace), not %q", shorten(string(b)))
	}
	return nil
}

func parseAzureRow(b []byte, _ bool) (int64, int32, int32, []uint64, error) {
	c1 := bytes.IndexByte(b, ',')
	if c1 < 0 {
		return 0, 0, 0, nil, errors.New("want 3 comma-separated columns: TIMESTAMP,ContextTokens,GeneratedTokens")
	}
	c2 := bytes.IndexByte(b[c1+1:], ',')
	if c2 < 0 || bytes.IndexByte(b[c1+1+c2+1:], ',') >= 0 {
		return 0, 0, 0, nil, errors.New("want 3 comma-separated columns: TIMESTAMP,ContextTokens,GeneratedTokens")
	}
	c2 += c1 + 1
	ts, err := time.Parse(azureLayout, string(bytes.TrimSpace(b[:c1])))
	if err != nil {
		return 0, 0, 0, nil, fmt.Errorf("TIMESTAMP %q is not a time like 2023-11-16 18:15:46.6805900", shorten(string(b[:c1])))
	}
	if ns := ts.UnixNano(); !time.Unix(0, ns).Equal(ts) {
		// UnixNano is defined for 1678–2262 only: beyond, it wraps and the row would land at
		// a meaningless offset.
		return 0, 0, 0, nil, fmt.Errorf("TIMESTAMP %q is outside the years 1678 to 2262", shorten(string(b[:c1])))
	}
	in, err := tokenCount("ContextTokens", bytes.TrimSpace(b[c1+1:c2]), 1)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	out, err := tokenCount("GeneratedTokens", bytes.TrimSpace(b[c2+1:]), 1)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	return ts.UnixNano(), in, out, nil, nil
}

// tokenCount parses a length column: an integer between least and MaxTraceTokens.
func tokenCount(col string, b []byte, least int) (int32, error) {
	v, err := strconv.Atoi(string(b))
	if err != nil || v < least || v > MaxTraceTokens {
		return 0, fmt.Errorf("%s %q must be an integer ≥ %d and ≤ %d", col, shorten(string(b)), least, MaxTraceTokens)
	}
	return int32(v), nil
}

// mooncakeRow is the part of a Mooncake line we read; other keys are ignored.
type mooncakeRow struct {
	Timestamp    *json.Number  `json:"timestamp"`
	InputLength  *json.Number  `json:"input_length"`
	OutputLength *json.Number  `json:"output_length"`
	HashIDs      []json.Number `json:"hash_ids"`
}

func parseMooncakeRow(b []byte, ids []uint64) (int64, int32, int32, []uint64, error) {
	var r mooncakeRow
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return 0, 0, 0, ids, fmt.Errorf("not a JSON object with timestamp, input_length, output_length: %s", jsonProblem(err))
	}
	if dec.More() {
		return 0, 0, 0, ids, errors.New("more than one JSON value on the line")
	}
	if r.Timestamp == nil || r.InputLength == nil || r.OutputLength == nil {
		return 0, 0, 0, ids, errors.New("needs timestamp (ms), input_length and output_length")
	}
	ms, err := r.Timestamp.Float64()
	if err != nil || !(ms >= 0) || ms > float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0, 0, 0, ids, fmt.Errorf("timestamp %s must be a number of milliseconds ≥ 0", shorten(r.Timestamp.String()))
	}
	in, err := tokenCount("input_length", []byte(r.InputLength.String()), 1)
	if err != nil {
		return 0, 0, 0, ids, err
	}
	out, err := tokenCount("output_length", []byte(r.OutputLength.String()), 1)
	if err != nil {
		return 0, 0, 0, ids, err
	}
	if blocks := (int(in) + MooncakeBlockTokens - 1) / MooncakeBlockTokens; len(r.HashIDs) > blocks {
		return 0, 0, 0, ids, fmt.Errorf("hash_ids has %d blocks of %d tokens but input_length %d needs only %d", len(r.HashIDs), MooncakeBlockTokens, in, blocks)
	}
	for i, h := range r.HashIDs {
		v, err := strconv.ParseUint(h.String(), 10, 64)
		if err != nil {
			return 0, 0, 0, ids, fmt.Errorf("hash_ids[%d] %s must be an integer ≥ 0", i, shorten(h.String()))
		}
		ids = append(ids, v)
	}
	return int64(math.Round(ms * float64(time.Millisecond))), in, out, ids, nil
}

// jsonProblem shortens a JSON decoding error to its message.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s must be %s, not %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of line"
	}
	return err.Error()
}

// shorten keeps a bad value short in messages.
func shorten(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
