package traffic

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/inferprobe/inferprobe/config"
)

const shareGPTSample = `[
  {"id": "a", "conversations": [
    {"from": "human", "value": "what is the capital of france"},
    {"from": "gpt", "value": "paris is the capital"}]},
  {"id": "b", "conversations": [{"from": "gpt", "value": "a reply without a question"}]},
  {"id": "c", "conversations": [
    {"from": "system", "value": "be brief"},
    {"from": "human", "value": "name three colours please"},
    {"from": "gpt", "value": "red green blue"},
    {"from": "human", "value": "and two more"},
    {"from": "gpt", "value": "pink and gray"}]},
  {"id": "d", "conversations": [
    {"from": "human", "value": "one two three four five six seven eight nine ten eleven"},
    {"from": "gpt", "value": "x"}]}
]
`

func TestReadShareGPT(t *testing.T) {
	d, err := ReadDataset(strings.NewReader(shareGPTSample), "s.json", DatasetShareGPT, DatasetFilter{MaxInput: 10}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	// b has no human turn and d's prompt is over max_input_tokens (11 words > 10).
	if d.Len() != 2 || d.Filtered != 2 || d.Skipped != 0 {
		t.Fatalf("%d entries, %d filtered, %d skipped; want 2, 2, 0", d.Len(), d.Filtered, d.Skipped)
	}
	for i, want := range []struct {
		prompt  string
		in, out int
	}{{"what is the capital of france", 6, 4}, {"name three colours please", 4, 3}} {
		prompt, msgs, in, out := d.Entry(i)
		if prompt != want.prompt || msgs != nil || in != want.in || out != want.out {
			t.Errorf("entry %d = %q %v %d %d, want %+v", i, prompt, msgs, in, out, want)
		}
	}
	d, err = ReadDataset(strings.NewReader(shareGPTSample), "s.json", DatasetShareGPT, DatasetFilter{MinOutput: 4}, nil, false)
	if err != nil || d.Len() != 1 {
		t.Fatalf("min_output_tokens 4: %v, %d entries", err, d.Len())
	}
}

func TestReadJSONL(t *testing.T) {
	const data = `{"prompt": "hello there general", "max_tokens": 7}

{"messages": [{"role": "system", "content": "be kind"}, {"role": "user", "content": "hi you"}]}
`
	d, err := ReadDataset(strings.NewReader(data), "d.jsonl", DatasetJSONL, DatasetFilter{}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 {
		t.Fatalf("%d entries", d.Len())
	}
	if p, m, in, out := d.Entry(0); p != "hello there general" || m != nil || in != 3 || out != 7 {
		t.Errorf("entry 0 = %q %v %d %d", p, m, in, out)
	}
	if p, m, in, out := d.Entry(1); p != "be kind\nhi you" || len(m) != 2 || m[0].Role != "system" || in != 4 || out != 0 {
		t.Errorf("entry 1 = %q %v %d %d", p, m, in, out)
	}
}

func TestDatasetErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, format, data string
		line               int
		msg                string
	}{
		{"sharegpt not an array", DatasetShareGPT, `{"conversations": []}`, 1, "want an array"},
		{"sharegpt syntax", DatasetShareGPT, "[\n  {\"conversations\": []},\n  {\"conversations\": [}\n]", 3, "not ShareGPT JSON"},
		{"sharegpt turn", DatasetShareGPT, "[\n  {\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]},\n  {\"conversations\": [{\"from\": \"human\"}]}\n]", 3, "conversations[0] needs"},
		{"sharegpt type", DatasetShareGPT, "[\n  {\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]},\n  {\"conversations\": \"nope\"}\n]", 3, "conversation is not"},
		{"jsonl syntax", DatasetJSONL, "{\"prompt\": \"a\"}\n{\"prompt\": \n", 2, "not a JSON object"},
		{"jsonl neither", DatasetJSONL, "{\"prompt\": \"a\"}\n{\"max_tokens\": 3}\n", 2, `needs "prompt"`},
		{"jsonl both", DatasetJSONL, "{\"prompt\": \"a\"}\n\n{\"prompt\": \"a\", \"messages\": []}\n", 3, "both"},
		{"jsonl empty prompt", DatasetJSONL, "{\"prompt\": \"a\"}\n{\"prompt\": \" \"}\n", 2, "empty"},
		{"jsonl bad message", DatasetJSONL, "{\"prompt\": \"a\"}\n{\"messages\": [{\"role\": \"user\"}]}\n", 2, "messages[0]"},
		{"jsonl max_tokens", DatasetJSONL, "{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"max_tokens\": 0}\n", 2, "max_tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadDataset(strings.NewReader(tc.data), "f.data", tc.format, DatasetFilter{}, nil, false)
			var re *RowError
			if !errors.As(err, &re) || re.File != "f.data" || re.Line != tc.line || !strings.Contains(re.Msg, tc.msg) {
				t.Fatalf("error %v, want f.data:%d: …%s…", err, tc.line, tc.msg)
			}
			if strings.Contains(tc.name, "syntax") || strings.Contains(tc.name, "array") {
				return // the rest of a file that is not JSON cannot be read
			}
			d, err := ReadDataset(strings.NewReader(tc.data), "f.data", tc.format, DatasetFilter{}, nil, true)
			if err != nil || d.Skipped != 1 || d.Len() != 1 {
				t.Fatalf("with skip_invalid: %v", err)
			}
		})
	}
	if _, err := ReadDataset(strings.NewReader("[]"), "e.json", DatasetShareGPT, DatasetFilter{}, nil, false); err == nil || !strings.Contains(err.Error(), "no entry") {
		t.Fatalf("an empty data set: %v", err)
	}
	if _, err := LoadDataset(filepath.Join(t.TempDir(), "none.jsonl"), "", DatasetFilter{}, nil, false); err == nil {
		t.Fatal("a missing file loaded")
	}
}

// TestDatasetSource: requests sample the entries from the seed (every entry is used, the same
// seed gives the same sequence), carry their output lengths, and cache busting prefixes a
// nonce to the prompt and the first message.
func TestDatasetSource(t *testing.T) {
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf(`{"messages": [{"role": "user", "content": "question number %d"}], "max_tokens": %d}`, i, i+1))
	}
	d, err := ReadDataset(strings.NewReader(strings.Join(lines, "\n")), "d.jsonl", DatasetJSONL, DatasetFilter{}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	src := NewDatasetSource(d, DatasetSourceOptions{MaxTokens: 99, CacheBust: true, Seed: 5})
	again := NewDatasetSource(d, DatasetSourceOptions{MaxTokens: 99, CacheBust: true, Seed: 5})
	other := NewDatasetSource(d, DatasetSourceOptions{MaxTokens: 99, CacheBust: true, Seed: 6})
	seen := map[int]bool{}
	differs := false
	for n := uint64(0); n < 400; n++ {
		r := src.Next(n)
		var i int
		if _, err := fmt.Sscanf(strings.SplitN(r.Messages[0].Content, " ", 2)[1], "question number %d", &i); err != nil {
			t.Fatalf("request %d: %q: %v", n, r.Messages[0].Content, err)
		}
		seen[i] = true
		if r.MaxTokens != i+1 || r.PromptTokens != 4 || !strings.HasPrefix(r.Prompt, noncePrefix) || !strings.HasPrefix(r.Messages[0].Content, noncePrefix) {
			t.Fatalf("request %d = %+v", n, r)
		}
		if again.Next(n).Prompt != r.Prompt {
			t.Fatal("the same seed gave another request")
		}
		differs = differs || other.Next(n).Prompt != r.Prompt
	}
	if len(seen) != 20 || !differs {
		t.Fatalf("%d of 20 entries sent; another seed differs: %v", len(seen), differs)
	}
	if _, m, _, _ := d.Entry(0); strings.HasPrefix(m[0].Content, noncePrefix) {
		t.Fatal("cache busting modified the data set")
	}
	plain := NewDatasetSource(d, DatasetSourceOptions{MaxTokens: 99, Seed: 5}).Next(0)
	if strings.HasPrefix(plain.Prompt, noncePrefix) || plain.PromptTokens != 3 {
		t.Fatalf("without cache busting: %+v", plain)
	}
}

// TestSharedPrefixSource: requests of one group share exactly the system prompt, groups
// differ, and lengths are exact.
func TestSharedPrefixSource(t *testing.T) {
	for _, bust := range []bool{true, false} {
		src := NewSharedPrefixSource(SharedPrefixOptions{Groups: 3, PromptsPerGroup: 2, SystemPromptTokens: 50, QuestionTokens: 10, MaxTokens: 4, CacheBust: bust, Seed: 1})
		sys := map[uint64]string{}
		questions := map[string]int{}
		for n := uint64(0); n < 30; n++ {
			r := src.Next(n)
			if len(r.Messages) != 2 || countWords(r.Messages[0].Content) != 50 || countWords(r.Messages[1].Content) != 10 ||
				countWords(r.Prompt) != 60 || r.PromptTokens != 60 || r.MaxTokens != 4 {
				t.Fatalf("request %d: %+v", n, r)
			}
			g := n % 3
			if s, ok := sys[g]; ok && s != r.Messages[0].Content {
				t.Fatalf("group %d's system prompt changed", g)
			}
			sys[g] = r.Messages[0].Content
			questions[r.Messages[1].Content]++
		}
		if sys[0] == sys[1] || sys[1] == sys[2] {
			t.Fatal("groups share a system prompt")
		}
		if want := map[bool]int{true: 30, false: 6}[bust]; len(questions) != want {
			t.Fatalf("cache_bust %v: %d distinct questions, want %d", bust, len(questions), want)
		}
	}
}

// TestNewSourceFromConfig: the registry picks the source the configuration selects.
func TestNewSourceFromConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.jsonl")
	if err := os.WriteFile(file, []byte(`{"prompt": "only this", "max_tokens": 3}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	off := false
	tgt := func() config.Target {
		return config.Target{Request: config.Request{InputTokens: config.FixedTokens(5), MaxTokens: 9, CacheBust: &off}}
	}
	gen := tgt()
	if r := mustSource(t, gen).Next(0); r.PromptTokens != 5 || r.MaxTokens != 9 {
		t.Fatalf("generated: %+v", r)
	}
	ds := tgt()
	ds.Request.Dataset = &config.Dataset{File: file}
	if r := mustSource(t, ds).Next(0); r.Prompt != "only this" || r.MaxTokens != 3 {
		t.Fatalf("dataset: %+v", r)
	}
	sp := tgt()
	sp.Request.SharedPrefix = &config.SharedPrefix{Groups: 1, PromptsPerGroup: 1, SystemPromptTokens: 7, QuestionTokens: 2}
	if r := mustSource(t, sp).Next(0); r.PromptTokens != 9 {
		t.Fatalf("shared prefix: %+v", r)
	}
	bad := tgt()
	bad.Request.Dataset = &config.Dataset{File: filepath.Join(dir, "none.jsonl")}
	if _, err := NewSource(bad, Plan{}, 1); err == nil {
		t.Fatal("a missing data set built a source")
	}
}

func mustSource(t *testing.T, tgt config.Target) Source {
	t.Helper()
	s, err := NewSource(tgt, Plan{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
