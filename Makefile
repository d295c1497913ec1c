# inferprobe: the README's two commands are `make run` and `make test`.
GO           ?= go
STATICCHECK  ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
BIN          := inferprobe
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH       ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS      := -X github.com/prometheus/common/version.Version=$(VERSION) \
                -X github.com/prometheus/common/version.Revision=$(REVISION) \
                -X github.com/prometheus/common/version.Branch=$(BRANCH)

.PHONY: all build run test vet staticcheck unit fuzz soak soak-short bench bench-load bench-rules bench-targets generate release tools clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

# The daemon with no config: probes its embedded simulator; metrics on :9788/metrics.
run:
	$(GO) run -ldflags "$(LDFLAGS)" . $(ARGS)

# Everything CI checks: formatting, vet, staticcheck, the race-enabled tests, and a short
# run of every fuzz target.
test: vet staticcheck unit fuzz soak-short

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	 if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...
	# Timing bounds hold without the race detector's slowdown: the trace replay's 5 ms p99.
	$(GO) test -count=1 -run '^TestTraceReplay(AgainstSimulator|LagCatchesALateProber)$$' ./engine/

# Each fuzz target for a fixed number of executions (the seed corpus also runs in `unit`).
# A count, not a duration: a duration -fuzztime can fail with a bare "context deadline
# exceeded" when it expires (go.dev/issue/75804, not fixed in any Go 1.26 release).
FUZZTIME ?= 30000x
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# An hour at 50 req/s with every simulator fault on; RSS and goroutines must not grow (not in CI).
soak:
	scripts/soak.sh

# Its two-minute version, part of `make test`.
soak-short:
	DURATION=120 INTERVAL=10 WARM=30 SIM_ADDR=127.0.0.1:18110 DAEMON_ADDR=127.0.0.1:19810 scripts/soak.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Load benchmark against a separate simulator process, with vegeta as the plain-HTTP reference
# for client CPU per request (see docs/benchmarks.md).
bench-load: build
	scripts/bench-load.sh

# Rule-evaluation cost of alerts/ for 100 targets in a real Prometheus, live and over synthetic
# history that fills every window (see docs/benchmarks.md).
bench-rules: build
	scripts/bench-rules.sh
	scripts/bench-rules-history.sh

# The daemon's CPU and RSS with 1, 10 and 100 targets (see docs/benchmarks.md).
bench-targets: build
	scripts/bench-targets.sh

# The PrometheusRule and dashboards ConfigMap of the Helm chart and the kustomizations, from
# alerts/ and dashboards/; deploy/generate's test fails when they are out of date.
generate:
	$(GO) run ./deploy/generate

# Sets a release's version in the chart (version, appVersion), every kustomization's image tag
# and the examples' image references: make release VERSION=1.2.3; then commit and tag v1.2.3
# (deploy/chart_test.go holds the tag to the chart). VERSION must be given: its default is
# git describe's, for builds.
release:
	@if [ "$(origin VERSION)" != "command line" ] && [ "$(origin VERSION)" != "environment" ]; then \
	  echo "usage: make release VERSION=x.y.z" >&2; exit 2; fi
	scripts/release.sh "$(VERSION)"

# helm, kustomize, kubectl-validate, the Kubernetes schemas and the Prometheus Operator CRDs the
# deploy tests use (deploy/tools/versions); .ci/run runs this before `make test`.
tools:
	deploy/tools/install.sh

clean:
	rm -f $(BIN)
