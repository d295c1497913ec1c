package main

import (
	"html/template"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"

	"github.com/inferprobe/inferprobe/engine"
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

type landingData struct {
	Version, ConfigFile, MetricsPath, Uptime string
	Targets                                  []engine.TargetStatus
}

func (d *daemon) landingData() landingData {
	data := landingData{
		Version:     version.Info(),
		ConfigFile:  d.opts.configFile,
		MetricsPath: d.opts.telemetryPath,
		Uptime:      time.Since(d.started).Round(time.Second).String(),
		Targets:     d.set.Targets(),
	}
	if data.ConfigFile == "" {
		data.ConfigFile = "(none: embedded simulator)"
	}
	return data
}

var landingTemplate = template.Must(template.New("landing").Parse(`<!DOCTYPE html>
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
</body></html>
`))
