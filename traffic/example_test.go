package traffic_test

import (
	"fmt"
	"time"

	"github.com/inferprobe/inferprobe/traffic"
)

// One base seed drives every target: derive a seed per target and purpose, build the pacer
// and the source from them, and ask both for request n.
func Example() {
	const base = 20240601
	pacer, err := traffic.New("constant", 4, traffic.SubSeed(base, "chat", "arrivals"))
	if err != nil {
		panic(err)
	}
	source := traffic.NewPromptSource(traffic.PromptOptions{
		InputTokens: 16,
		MaxTokens:   64,
		CacheBust:   true,
		Seed:        traffic.SubSeed(base, "chat", "prompts"),
	})
	for n := uint64(0); n < 3; n++ {
		at, ok := pacer.Next(n)
		req := source.Next(n)
		fmt.Println(n, at, ok, req.PromptTokens, req.MaxTokens)
	}
	// Output:
	// 0 0s true 16 64
	// 1 250ms true 16 64
	// 2 500ms true 16 64
}

// A daemon-mode schedule: a quiet hour, then a bursty peak, repeated forever.
func ExampleNewStages() {
	const base = 7
	stages := []traffic.Stage{
		{Duration: time.Hour, Rate: 0.5, Kind: traffic.KindPoisson, Seed: traffic.SubSeed(base, "chat", "stage", "0")},
		{Duration: 10 * time.Minute, Rate: 5, Kind: traffic.KindGamma, CV: 2, Seed: traffic.SubSeed(base, "chat", "stage", "1")},
	}
	if err := traffic.ValidateStages(stages); err != nil {
		panic(err)
	}
	p := traffic.NewStages(stages, true)
	fmt.Println(p.Rate(30*time.Minute), p.Rate(65*time.Minute), p.Rate(75*time.Minute))
	// Output:
	// 0.5 5 0.5
}
