package traffic

import (
	"errors"
	"strings"
	"testing"
)

// checkReadError: a reader's error is a RowError naming the file and a line inside the input,
// or one of the errors about the whole input (wholeFile, matched as prefixes): a malformed row
// reported without its line fails.
func checkReadError(t *testing.T, data string, err error, wholeFile ...string) {
	t.Helper()
	var re *RowError
	if errors.As(err, &re) {
		if re.File != "fuzz" || re.Line < 1 || re.Line > strings.Count(data, "\n")+1 {
			t.Fatalf("error %q names line %d of a %d-line input", err, re.Line, strings.Count(data, "\n")+1)
		}
		return
	}
	for _, w := range wholeFile {
		if strings.HasPrefix(err.Error(), w) {
			return
		}
	}
	t.Fatalf("error %q names no line and is none of the whole-input errors %q", err, wholeFile)
}

// checkTraceInvariants holds what every successfully read trace must satisfy, and that a
// failure names the file and a line inside the input.
func checkTraceInvariants(t *testing.T, data string, tr *Trace, err error) {
	t.Helper()
	if err != nil {
		checkReadError(t, data, err, "trace fuzz: no rows", "trace fuzz: no valid rows")
		return
	}
	if tr.Len() == 0 {
		t.Fatal("a trace without rows was accepted")
	}
	prev := int64(-1)
	for i := 0; i < tr.Len(); i++ {
		at, in, out := tr.Row(i)
		if int64(at) < prev || (i == 0 && at != 0) {
			t.Fatalf("row %d at %v after %v: offsets must start at 0 and never decrease", i, at, prev)
		}
		prev = int64(at)
		if in < 1 || in > MaxTraceTokens || out < 1 || out > MaxTraceTokens {
			t.Fatalf("row %d lengths %d, %d out of range", i, in, out)
		}
		if h := tr.HashIDs(i); len(h) > (in+MooncakeBlockTokens-1)/MooncakeBlockTokens {
			t.Fatalf("row %d has %d hash ids for %d tokens", i, len(h), in)
		}
	}
	// A replay of any accepted trace builds requests of exactly the rows' lengths.
	r, rerr := NewReplay(tr, 3, 0, false)
	if rerr != nil {
		t.Fatalf("an accepted trace cannot be replayed: %v", rerr)
	}
	src := NewReplaySource(r, ReplaySourceOptions{CacheBust: true, Seed: 1})
	for n := uint64(0); n < uint64(min(tr.Len(), 3)); n++ {
		req := src.Next(n)
		if _, in, out := tr.Row(r.Row(n)); in <= 4096 && (countWords(req.Prompt) != in || req.MaxTokens != out) {
			t.Fatalf("request %d: %d words, max %d; want %d, %d", n, countWords(req.Prompt), req.MaxTokens, in, out)
		}
	}
}

func FuzzReadAzure(f *testing.F) {
	f.Add("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n")
	f.Add("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,1\n\n2023-11-16 18:15:45,1,1\n")
	f.Add("TIMESTAMP,ContextTokens,GeneratedTokens\nx,y,z\n")
	f.Add("a,b\n")
	f.Fuzz(func(t *testing.T, data string) {
		for _, skip := range []bool{false, true} {
			tr, err := ReadTrace(strings.NewReader(data), "fuzz", TraceAzure, skip)
			checkTraceInvariants(t, data, tr, err)
		}
	})
}

func FuzzReadMooncake(f *testing.F) {
	f.Add(`{"timestamp": 0, "input_length": 1100, "output_length": 10, "hash_ids": [1, 2, 3]}` + "\n" +
		`{"timestamp": 27.5, "input_length": 600, "output_length": 20, "hash_ids": [1, 7]}` + "\n")
	f.Add(`{"timestamp": 1e300, "input_length": 1, "output_length": 1}` + "\n")
	f.Add(`{"timestamp": 5, "input_length": 2, "output_length": 1, "hash_ids": [18446744073709551615]}`)
	f.Add("{}\n[1]\n\"x\"\n")
	f.Fuzz(func(t *testing.T, data string) {
		for _, skip := range []bool{false, true} {
			tr, err := ReadTrace(strings.NewReader(data), "fuzz", TraceMooncake, skip)
			checkTraceInvariants(t, data, tr, err)
		}
	})
}

// checkDatasetInvariants: an accepted data set has entries with prompts whose counted length
// is the words', and a failure names a line of the input.
func checkDatasetInvariants(t *testing.T, data string, d *Dataset, err error) {
	t.Helper()
	if err != nil {
		checkReadError(t, data, err, "dataset fuzz: no entry to send")
		return
	}
	if d.Len() == 0 {
		t.Fatal("a data set without entries was accepted")
	}
	src := NewDatasetSource(d, DatasetSourceOptions{MaxTokens: 5, CacheBust: true, Seed: 2})
	for i := 0; i < d.Len(); i++ {
		prompt, _, in, out := d.Entry(i)
		if in != countWords(prompt) || out < 0 {
			t.Fatalf("entry %d: %d tokens for %d words, output %d", i, in, countWords(prompt), out)
		}
		if r := src.Next(uint64(i)); r.MaxTokens < 1 || r.PromptTokens < 1 {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
}

func FuzzReadShareGPT(f *testing.F) {
	f.Add(shareGPTSample)
	f.Add(`[{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": ""}]}]`)
	f.Add(`[{"conversations": null}, 3, "x", []]`)
	f.Add("[\n{\"conversations\": [{\"from\": 1}]}\n")
	f.Fuzz(func(t *testing.T, data string) {
		for _, skip := range []bool{false, true} {
			d, err := ReadDataset(strings.NewReader(data), "fuzz", DatasetShareGPT, DatasetFilter{MaxInput: 100}, nil, skip)
			checkDatasetInvariants(t, data, d, err)
		}
	})
}

func FuzzReadJSONL(f *testing.F) {
	f.Add("{\"prompt\": \"hello there\", \"max_tokens\": 7}\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n")
	f.Add("{\"prompt\": \"a\", \"messages\": []}\n{\"max_tokens\": -1}\n")
	f.Add("[]\nnull\n{\"prompt\": 3}\n")
	f.Fuzz(func(t *testing.T, data string) {
		for _, skip := range []bool{false, true} {
			d, err := ReadDataset(strings.NewReader(data), "fuzz", DatasetJSONL, DatasetFilter{}, nil, skip)
			checkDatasetInvariants(t, data, d, err)
		}
	})
}
