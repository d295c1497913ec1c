package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// shardedJob is the part of a Job manifest the sharded run's checks read.
type shardedJob struct {
	Spec struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    int    `yaml:"completions"`
		Parallelism    int    `yaml:"parallelism"`
		Template       struct {
			Spec struct {
				Containers []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name      string `yaml:"name"`
						ValueFrom struct {
							FieldRef struct {
								FieldPath string `yaml:"fieldPath"`
							} `yaml:"fieldRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readJob(t *testing.T, name string) shardedJob {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("kubernetes", "sharded-run", name))
	if err != nil {
		t.Fatal(err)
	}
	var j shardedJob
	if err := yaml.Unmarshal(data, &j); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(j.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(j.Spec.Template.Spec.Containers))
	}
	return j
}

// TestShardedRunCountsAgree: the sharded run's shard count is written in three places (the
// Job's completions and parallelism, its --shard=$(SHARD)/N, and the merge Job's list of
// reports); they must agree, and the shard index must be the Pod's completion index, or
// shards would overlap, be missing from the merge, or start apart.
func TestShardedRunCountsAgree(t *testing.T) {
	job, merge := readJob(t, "job.yaml"), readJob(t, "merge-job.yaml")
	c := job.Spec.Template.Spec.Containers[0]
	n := job.Spec.Completions
	if job.Spec.CompletionMode != "Indexed" || n < 2 || job.Spec.Parallelism != n {
		t.Errorf("job.yaml: completionMode %q, completions %d, parallelism %d; want Indexed, N ≥ 2 and all N at once",
			job.Spec.CompletionMode, n, job.Spec.Parallelism)
	}
	shardRE := regexp.MustCompile(`^--shard=\$\(SHARD\)/(\d+)$`)
	var shardArg, outputArg string
	for _, a := range c.Args {
		if m := shardRE.FindStringSubmatch(a); m != nil {
			shardArg = m[1]
		}
		if v, ok := strings.CutPrefix(a, "--output="); ok {
			outputArg = v
		}
	}
	if shardArg != strconv.Itoa(n) {
		t.Errorf("job.yaml: --shard=$(SHARD)/%s, want /%d (completions)", shardArg, n)
	}
	var fromIndex bool
	for _, e := range c.Env {
		fromIndex = fromIndex || e.Name == "SHARD" && e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
	}
	if !fromIndex {
		t.Error("job.yaml: SHARD is not read from the Pod's job-completion-index annotation")
	}
	var want []string
	for i := range n {
		want = append(want, strings.ReplaceAll(outputArg, "$(SHARD)", fmt.Sprint(i))+"/report.json")
	}
	var got []string
	for _, a := range merge.Spec.Template.Spec.Containers[0].Args {
		if strings.HasSuffix(a, "/report.json") && !strings.HasPrefix(a, "--") {
			got = append(got, a)
		}
	}
	if outputArg == "" || !slices.Equal(got, want) {
		t.Errorf("merge-job.yaml merges %v, want the %d shard reports %v", got, n, want)
	}
}
