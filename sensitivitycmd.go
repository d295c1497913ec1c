package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/sensitivity"
)

// sensitivityOptions are the flags of `inferprobe sensitivity`.
type sensitivityOptions struct {
	configFile  string
	output      string
	targetsFile string
	serverLog   string
}

func addSensitivityFlags(cmd *kingpin.CmdClause) *sensitivityOptions {
	o := &sensitivityOptions{}
	cmd.Flag("config.file", "Configuration file with targets and an experiment block.").Required().PlaceHolder("FILE").StringVar(&o.configFile)
	cmd.Flag("output", "Directory for sensitivity.json and the plot; created if missing.").PlaceHolder("DIR").StringVar(&o.output)
	cmd.Flag("targets-file", "Speed-bump target-pattern file, passed to templates as .TargetsFile.").PlaceHolder("FILE").StringVar(&o.targetsFile)
	cmd.Flag("server-log", "Append the started servers' output to this file (default: discarded).").PlaceHolder("FILE").StringVar(&o.serverLog)
	return o
}

// runSensitivity runs `inferprobe sensitivity`; it returns the exit code.
func runSensitivity(ctx context.Context, o *sensitivityOptions, stdout, stderr io.Writer, logger *slog.Logger) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "%s sensitivity: "+format+"\n", append([]any{appName}, args...)...)
		return code
	}
	cfg, err := engine.Load(o.configFile)
	if err != nil {
		return fail(2, "loading %s:\n%s", o.configFile, indent(err.Error(), "  "))
	}
	if cfg.Experiment == nil {
		return fail(2, "%s has no experiment block (see docs/sensitivity.md)", o.configFile)
	}
	var out *os.File
	if o.output != "" {
		if err := os.MkdirAll(o.output, 0o755); err != nil {
			return fail(2, "--output: %v", err)
		}
		if out, err = os.Create(filepath.Join(o.output, "sensitivity.json")); err != nil {
			return fail(2, "--output: %v", err)
		}
		defer out.Close()
	}
	opts := sensitivity.Options{Logger: logger, Progress: stderr, TargetsFile: o.targetsFile, Version: version.Version}
	if o.serverLog != "" {
		f, err := os.OpenFile(o.serverLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fail(2, "--server-log: %v", err)
		}
		defer f.Close()
		opts.ServerOutput = f
	}
	rep, err := sensitivity.Run(ctx, cfg, opts)
	var plotErr error
	if out != nil && err == nil {
		// The plot first, so that the report and the summary count its time as overhead.
		began := time.Now()
		_, plotErr = rep.WritePlot(o.output)
		rep.AddOutput(time.Since(began))
	}
	if rep != nil {
		_ = rep.WriteSummary(stdout)
	}
	if out != nil {
		// A failed experiment still gets its report (each level's error) when there is one;
		// without one, the file opened to check --output early is removed rather than left empty.
		if rep == nil {
			_ = out.Close()
			_ = os.Remove(out.Name())
		} else {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return fail(1, "writing %s: %v", out.Name(), err)
			}
		}
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	if out != nil {
		if plotErr != nil {
			return fail(1, "%v", plotErr)
		}
		fmt.Fprintf(stderr, "%s sensitivity: report and plot written to %s\n", appName, o.output)
	}
	return 0
}
