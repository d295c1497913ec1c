package main

import (
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"

	"github.com/inferprobe/inferprobe/engine"
	"github.com/inferprobe/inferprobe/prober"
	"github.com/inferprobe/inferprobe/recent"
)

// routes builds the daemon's HTTP handler: metrics, landing page, health, readiness, reload.
func (d *daemon) routes(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(d.opts.telemetryPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          slogPromLogger{d},
	}))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("Healthy\n"))
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("Ready\n"))
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		// Anyone who reaches the port could otherwise make the daemon re-read its file: off
		// unless --web.enable-lifecycle, as in Prometheus.
		if !d.opts.enableLifecycle {
			http.Error(w, "Lifecycle API is not enabled (start with --web.enable-lifecycle, or send SIGHUP).\n", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "This endpoint requires a POST or PUT request.\n", http.StatusMethodNotAllowed)
			return
		}
		if err := d.reload(); err != nil {
			// The error names fields, lines and paths of the file: it goes to the log (reload
			// logs it), never to an HTTP caller.
			http.Error(w, "failed to reload config; the error is in inferprobe's log\n", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("OK\n"))
	})
	mux.HandleFunc("/request", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("target")
		id, err := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
		req, ok := d.recent.Get(name, id)
		if err != nil || !ok {
			http.Error(w, "no such request: it may have left the ring of recent requests\n", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := requestTemplate.Execute(w, requestPage(name, req)); err != nil {
			d.logger.Error("rendering request page", "err", err)
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := landingTemplate.Execute(w, d.landingData()); err != nil {
			d.logger.Error("rendering landing page", "err", err)
		}
	})
	return mux
}

// slogPromLogger adapts the daemon's logger to promhttp's error log.
type slogPromLogger struct{ d *daemon }

func (l slogPromLogger) Println(v ...any) { l.d.logger.Error("metrics handler", "err", v) }

// landingTarget is one target on the landing page: its status and its recent figures.
type landingTarget struct {
	engine.TargetStatus
	Recent recent.Summary
	Chart  template.HTML
}

type landingData struct {
	Version, ConfigFile, MetricsPath, Uptime string
	Targets                                  []landingTarget
}

func (d *daemon) landingData() landingData {
	data := landingData{
		Version:     version.Info(),
		ConfigFile:  d.opts.configFile,
		MetricsPath: d.opts.telemetryPath,
		Uptime:      time.Since(d.started).Round(time.Second).String(),
	}
	for _, t := range d.set.Targets() {
		sum := d.recent.Summary(t.Name)
		if len(sum.Recent) > 20 {
			sum.Recent = sum.Recent[:20]
		}
		data.Targets = append(data.Targets, landingTarget{TargetStatus: t, Recent: sum, Chart: chart(sum.Points)})
	}
	if data.ConfigFile == "" {
		data.ConfigFile = "(none: embedded simulator)"
	}
	return data
}

// chart draws TTFT and ITL p50 over the window as inline SVG: no script, no external asset.
func chart(points []recent.Point) template.HTML {
	const w, h, pad = 600.0, 120.0, 4.0
	if len(points) == 0 {
		return ""
	}
	line := func(v func(recent.Point) float64, color string) (string, float64) {
		top := 0.0
		for _, p := range points {
			top = max(top, v(p))
		}
		if top == 0 {
			return "", 0
		}
		top *= 1.25 // headroom, so a steady line does not sit on the frame
		var b strings.Builder
		for i, p := range points {
			x := pad + (w-2*pad)*float64(i)/float64(max(len(points)-1, 1))
			y := h - pad - (h-2*pad)*v(p)/top
			fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		}
		return fmt.Sprintf(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, color, strings.TrimSpace(b.String())), top
	}
	ttft, ttftTop := line(func(p recent.Point) float64 { return p.TTFTP50 }, "#1f77b4")
	itl, itlTop := line(func(p recent.Point) float64 { return p.ITLP50 }, "#d62728")
	return template.HTML(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="TTFT and ITL p50 over the last minutes">`+
		`<rect width="100%%" height="100%%" fill="#fafafa" stroke="#ddd"/>%s%s`+
		`<text x="8" y="14" font-size="11" fill="#1f77b4">TTFT p50 (top %.1f ms)</text>`+
		`<text x="200" y="14" font-size="11" fill="#d62728">ITL p50 (top %.2f ms)</text></svg>`,
		w, h, w, h, ttft, itl, ttftTop*1000, itlTop*1000))
}

// requestView is one request's full timing record, for its page. It holds nothing secret:
// the record has no headers or keys, and the target URL is not on it.
type requestView struct {
	Target                  string
	ID                      uint64
	At                      string
	Result, Err, Finish     string
	Status, Chunks, Tokens  int
	OutputSource, Prompt    string
	PromptTokens            int
	TTFT, TTFO, TPOT, E2E   string
	Delay                   string
	Phases                  []phaseView
	Gaps                    []gapView
	Warmup                  bool
	Retries                 int
	ReasoningTokens, Cached int
}

type phaseView struct{ Name, Took string }

type gapView struct {
	Index  int
	Gap    string
	Tokens int
}

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 2, 64) + " ms" }

func requestPage(target string, req recent.Request) requestView {
	r := &req.Record
	v := requestView{Target: target, ID: req.ID, At: req.At.UTC().Format(time.RFC3339Nano), Result: r.Result,
		Status: r.Status, Chunks: r.Chunks, Tokens: r.OutputTokens, OutputSource: r.OutputSource,
		PromptTokens: r.PromptTokens, Prompt: r.PromptSource, E2E: ms(r.End), Delay: ms(r.ScheduleDelay()),
		Warmup: r.Warmup, Finish: r.FinishReason, ReasoningTokens: r.ReasoningTokens, Cached: r.CachedTokens,
		Retries: r.Retries}
	if r.Err != nil {
		v.Err = r.Err.Error()
	}
	if d, ok := r.TTFT(); ok {
		v.TTFT = ms(d)
	}
	if d, ok := r.TTFO(); ok {
		v.TTFO = ms(d)
	}
	if d, ok := r.TPOT(); ok {
		v.TPOT = ms(d)
	}
	for p := 0; p < prober.NumPhases; p++ {
		if d, ok := r.Phase(p); ok {
			v.Phases = append(v.Phases, phaseView{prober.PhaseNames[p], ms(d)})
		}
	}
	for i, g := range r.Gaps {
		v.Gaps = append(v.Gaps, gapView{Index: i + 1, Gap: ms(g), Tokens: r.GapTokenCount(i)})
	}
	return v
}

var requestTemplate = template.Must(template.New("request").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>inferprobe: request {{.ID}} of {{.Target}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; }
</style></head>
<body>
<p><a href="/">inferprobe</a> › {{.Target}} › request {{.ID}}</p>
<h1>Request {{.ID}} of {{.Target}}</h1>
<table>
<tr><th>sent (t0)</th><td>{{.At}}</td></tr>
<tr><th>result</th><td>{{.Result}}{{if .Warmup}} (warmup){{end}}{{if .Retries}} (sent again {{.Retries}}×: the earlier attempts never reached the server){{end}}</td></tr>
<tr><th>HTTP status</th><td>{{.Status}}</td></tr>
<tr><th>finish reason</th><td>{{.Finish}}</td></tr>
{{if .Err}}<tr><th>error</th><td><code>{{.Err}}</code></td></tr>{{end}}
<tr><th>schedule delay</th><td>{{.Delay}}</td></tr>
<tr><th>TTFT</th><td>{{.TTFT}}</td></tr>
<tr><th>time to first output token</th><td>{{.TTFO}}</td></tr>
<tr><th>TPOT</th><td>{{.TPOT}}</td></tr>
<tr><th>end to end</th><td>{{.E2E}}</td></tr>
<tr><th>output tokens</th><td>{{.Tokens}} ({{.OutputSource}}) in {{.Chunks}} token chunks; {{.ReasoningTokens}} reasoning</td></tr>
<tr><th>prompt tokens</th><td>{{.PromptTokens}} ({{.Prompt}}); {{.Cached}} cached</td></tr>
</table>
<h2>HTTP phases</h2>
<table><tr><th>phase</th><th>took</th></tr>
{{range .Phases}}<tr><td>{{.Name}}</td><td>{{.Took}}</td></tr>{{else}}<tr><td colspan="2">none recorded</td></tr>{{end}}
</table>
<h2>Gaps between token chunks</h2>
<table><tr><th>#</th><th>gap</th><th>tokens in the chunk</th></tr>
{{range .Gaps}}<tr><td>{{.Index}}</td><td>{{.Gap}}</td><td>{{.Tokens}}</td></tr>{{else}}<tr><td colspan="3">no gaps (fewer than two token chunks)</td></tr>{{end}}
</table>
</body></html>
`))

var landingTemplate = template.Must(template.New("landing").Funcs(template.FuncMap{
	"pct": func(f float64) float64 { return f * 100 },
	"msf": func(s float64) string {
		if s == 0 {
			return "–"
		}
		return strconv.FormatFloat(s*1000, 'f', 1, 64) + " ms"
	},
	"ttft": func(r prober.Record) string {
		if d, ok := r.TTFT(); ok {
			return ms(d)
		}
		return ""
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>inferprobe</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
th { background: #f3f3f3; } code { background: #f6f6f6; padding: 0 3px; }
</style></head>
<body>
<h1>inferprobe</h1>
<p>Prometheus exporter and continuous synthetic prober for LLM inference endpoints.</p>
<p><a href="{{.MetricsPath}}">Metrics</a> · <a href="/-/healthy">Health</a> · <a href="/-/ready">Readiness</a></p>
<p>Configuration: <code>{{.ConfigFile}}</code> · Uptime: {{.Uptime}} · Version: <code>{{.Version}}</code></p>
<h2>Targets</h2>
<table>
<tr><th>Target</th><th>URL</th><th>API</th><th>Model</th><th>Traffic</th><th>Seed</th><th>Warmup</th><th>In flight</th></tr>
{{range .Targets}}{{if .Running}}<tr><td>{{.Name}}</td><td>{{.URL}}</td><td>{{.API}}</td><td>{{.Model}}</td>
<td>{{.Pacer}}{{if .Rate}} at {{.Rate}} req/s{{end}}{{if .Concurrency}}, {{.Concurrency}} in flight{{end}}{{if .Stages}}, {{.Stages}} stages{{end}}</td>
<td><code>{{.Seed}}</code> ({{.SeedSource}})</td>
<td>{{if .WarmupForced}}measuring (warmup forced open){{else if .WarmupOpen}}measuring{{else}}warming up{{end}}</td><td>{{.InFlight}}</td></tr>
{{else}}<tr><td>{{.Name}}</td><td colspan="7">not running (see log)</td></tr>{{end}}
{{else}}<tr><td colspan="8">no targets</td></tr>{{end}}
</table>
{{range .Targets}}{{if .Running}}
<h2 id="t-{{.Name}}">{{.Name}}: the last {{.Recent.Window}}</h2>
<p>{{.Recent.Requests}} requests, {{printf "%.1f" (pct .Recent.SuccessRatio)}}% successful ·
TTFT p50 {{msf .Recent.TTFTP50}} / p99 {{msf .Recent.TTFTP99}} ·
ITL p50 {{msf .Recent.ITLP50}} / p99 {{msf .Recent.ITLP99}} ·
TPOT p50 {{msf .Recent.TPOTP50}} / p99 {{msf .Recent.TPOTP99}} ·
{{if .WarmupForced}}measuring (warmup forced open){{else if .WarmupOpen}}measuring{{else}}warming up{{end}}</p>
{{.Chart}}
<table>
<tr><th>sent</th><th>result</th><th>status</th><th>TTFT</th><th>tokens</th><th></th></tr>
{{$name := .Name}}{{range .Recent.Recent}}<tr><td>{{.At.Format "15:04:05.000"}}</td><td>{{.Record.Result}}</td><td>{{.Record.Status}}</td><td>{{ttft .Record}}</td><td>{{.Record.OutputTokens}}</td><td><a href="/request?target={{$name}}&amp;id={{.ID}}">timing</a></td></tr>
{{else}}<tr><td colspan="6">no request finished yet</td></tr>{{end}}
</table>
{{end}}{{end}}
</body></html>
`))
