package prober

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r io.Reader, max int) ([]string, error) {
	t.Helper()
	s := NewSSEReader(r, max)
	var out []string
	for {
		data, err := s.Next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, string(data))
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"space after colon", "data: {\"a\":1}\n\n", []string{`{"a":1}`}},
		{"no space after colon", "data:{\"a\":1}\n\n", []string{`{"a":1}`}},
		{"only the first space is stripped", "data:  x\n\n", []string{" x"}},
		{"CRLF line ends", "data: a\r\n\r\ndata: b\r\n\r\n", []string{"a", "b"}},
		{"comments and keep-alives", ": ping\n\n:\ndata: a\n\n: keep-alive\n\n", []string{"a"}},
		{"multi-line data joins with LF", "data: a\ndata: b\ndata:\n\n", []string{"a\nb\n"}},
		{"other fields ignored", "event: message\nid: 7\nretry: 100\ndata: a\n\n", []string{"a"}},
		{"event without data is no event", "event: ping\n\ndata: a\n\n", []string{"a"}},
		{"field without colon", "data\n\n", []string{""}},
		{"blank lines between events", "\n\n\ndata: a\n\n\n\ndata: b\n\n", []string{"a", "b"}},
		{"last event without blank line", "data: a\n\ndata: [DONE]\n", []string{"a", "[DONE]"}},
		{"last line without newline", "data: a\n\ndata: [DONE]", []string{"a", "[DONE]"}},
		{"vllm role chunk, content, usage, done",
			"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
				"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n" +
				"data: {\"choices\":[],\"usage\":{\"completion_tokens\":1}}\n\n" +
				"data: [DONE]\n\n",
			[]string{`{"choices":[{"delta":{"role":"assistant","content":""}}]}`, `{"choices":[{"delta":{"content":"hi"}}]}`,
				`{"choices":[],"usage":{"completion_tokens":1}}`, "[DONE]"}},
		{"empty stream", "", nil},
		{"only comments", ": a\n: b\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, reader := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tc.input)},
				{"byte by byte", iotest.OneByteReader(strings.NewReader(tc.input))},
			} {
				got, err := readAll(t, reader.r, 1<<20)
				if err != nil {
					t.Fatalf("%s: unexpected error %v", reader.name, err)
				}
				if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
					t.Errorf("%s: got %q, want %q", reader.name, got, tc.want)
				}
			}
		})
	}
}

func TestSSEReaderErrorEvents(t *testing.T) {
	in := "data: a\n\n" +
		"error: {\"code\":500}\n\n" + // llama.cpp
		"event: error\ndata: boom\n\n" +
		"event: message\ndata: b\n\n" +
		"event: error\n\n" + // no data: no event, and the type does not stick
		"data: c\n\n"
	s := NewSSEReader(strings.NewReader(in), 1<<10)
	want := []struct {
		data    string
		isError bool
	}{{"a", false}, {`{"code":500}`, true}, {"boom", true}, {"b", false}, {"c", false}}
	for i, w := range want {
		data, err := s.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(data) != w.data || s.IsError() != w.isError {
			t.Errorf("event %d: %q error=%v, want %q error=%v", i, data, s.IsError(), w.data, w.isError)
		}
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("got %v after the last event, want EOF", err)
	}
}

func TestSSEReaderLongLine(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // longer than the 16 KiB buffer
	got, err := readAll(t, strings.NewReader("data: "+long+"\n\ndata: b\n\n"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != long || got[1] != "b" {
		t.Fatalf("long line not read whole: %d events, first %d bytes", len(got), len(got[0]))
	}
}

func TestSSEReaderEventTooLarge(t *testing.T) {
	for _, input := range []string{
		"data: " + strings.Repeat("x", 2000) + "\n\n",                     // one line
		strings.Repeat("data: "+strings.Repeat("x", 300)+"\n", 10) + "\n", // many lines
		"data: " + strings.Repeat("x", 40<<10) + "\n\n",                   // beyond the buffer
	} {
		_, err := readAll(t, strings.NewReader(input), 1000)
		if !errors.Is(err, ErrEventTooLarge) {
			t.Errorf("got %v, want ErrEventTooLarge", err)
		}
	}
}

func TestSSEReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\n"), iotest.ErrReader(boom))
	got, err := readAll(t, r, 1<<20)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Fatalf("got %q, %v; want one event then boom", got, err)
	}
}

func FuzzSSEReader(f *testing.F) {
	for _, seed := range []string{
		"data: a\n\n", "data:a\r\n\r\n", ": c\n\ndata: x\ndata: y\n\n", "data: [DONE]", "event: e\n\n",
		"data: " + strings.Repeat("z", 300) + "\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := NewSSEReader(bytes.NewReader(in), 256)
		total := 0
		for i := 0; ; i++ {
			data, err := s.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrEventTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(data) > 256 {
				t.Fatalf("event of %d bytes beyond the 256-byte limit", len(data))
			}
			total += len(data)
			if total > len(in) || i > len(in) {
				t.Fatalf("more output than input: %d events, %d bytes from %d", i, total, len(in))
			}
		}
	})
}

func BenchmarkSSEReaderChunk(b *testing.B) {
	chunk := `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}]}` + "\n\n"
	stream := []byte(strings.Repeat(chunk, 1000))
	r := bytes.NewReader(stream)
	s := NewSSEReader(r, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Next(); err == io.EOF {
			r.Reset(stream)
			s.Reset(r)
			if _, err := s.Next(); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
