// Package alerts holds inferprobe's Prometheus rules: recording and alerting rules in
// inferprobe.rules.yml and their promtool unit tests in inferprobe.rules.test.yml. It has no
// code; its Go tests run promtool on the files and hold every metric name the rules use to the
// contract in docs/metrics.md. docs/alerts.md explains each alert.
package alerts
