package config

import (
	"reflect"
	"testing"
	"time"
)

func mustParse(t *testing.T, y string) *Config {
	t.Helper()
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestDefaultsOfMinimalTarget(t *testing.T) {
	c := mustParse(t, base())
	on, recovery := true, DefaultRecoveryFailures
	want := Target{
		Name:             "t",
		URL:              "http://127.0.0.1:8000",
		Model:            "m",
		Timeout:          60 * time.Second,
		ConnectTimeout:   5 * time.Second,
		FirstByteTimeout: 60 * time.Second,
		IdleTimeout:      30 * time.Second,
		IdleConnTimeout:  4 * time.Second,
		MaxResponseBytes: 16 << 20,
		Traffic:          Traffic{MaxInFlight: 64},
		Request:          Request{InputTokens: FixedTokens(128), MaxTokens: 64, CacheBust: &on},
		Warmup:           Warmup{Requests: 5, MinDuration: 10 * time.Second, MaxDuration: 5 * time.Minute, RecoveryFailures: &recovery},
		SLO:              SLO{TargetRatio: 0.99, Window: 30 * 24 * time.Hour, RegressionFactor: 1.5},
	}
	if got := c.Targets[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	// api, path, pacer and rate depend on registered kinds: the extensions' defaults are
	// tested in the engine package, with the real registries.
}

func TestDefaultsDependOnOtherFields(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		check func(t *testing.T, tg Target)
	}{
		{"explicit path kept", []string{"    path: /openai/v1/chat/completions?api-version=2024-06-01"}, func(t *testing.T, tg Target) {
			if tg.Path != "/openai/v1/chat/completions?api-version=2024-06-01" {
				t.Errorf("path = %q", tg.Path)
			}
		}},
		{"short timeout lowers phase timeouts", []string{"    timeout: 2s"}, func(t *testing.T, tg Target) {
			if tg.ConnectTimeout != 2*time.Second || tg.FirstByteTimeout != 2*time.Second || tg.IdleTimeout != 2*time.Second {
				t.Errorf("connect %v first byte %v idle %v, want 2s each", tg.ConnectTimeout, tg.FirstByteTimeout, tg.IdleTimeout)
			}
		}},
		{"first byte follows timeout", []string{"    timeout: 90s"}, func(t *testing.T, tg Target) {
			if tg.FirstByteTimeout != 90*time.Second || tg.IdleTimeout != 30*time.Second {
				t.Errorf("first byte %v idle %v", tg.FirstByteTimeout, tg.IdleTimeout)
			}
		}},
		{"prompt given means no input tokens", []string{"    request:", "      prompt: hello"}, func(t *testing.T, tg Target) {
			if !tg.Request.InputTokens.IsZero() || tg.Request.Prompt != "hello" {
				t.Errorf("request = %+v", tg.Request)
			}
		}},
		{"cache bust false kept", []string{"    request:", "      cache_bust: false"}, func(t *testing.T, tg Target) {
			if tg.Request.CacheBust == nil || *tg.Request.CacheBust {
				t.Errorf("cache_bust = %v, want false", tg.Request.CacheBust)
			}
		}},
		{"cache bust null defaults", []string{"    request:", "      cache_bust: ~"}, func(t *testing.T, tg Target) {
			if tg.Request.CacheBust == nil || !*tg.Request.CacheBust {
				t.Errorf("cache_bust = %v, want true", tg.Request.CacheBust)
			}
		}},
		{"temperature zero is set, absent is nil", []string{"    request:", "      temperature: 0"}, func(t *testing.T, tg Target) {
			if tg.Request.Temperature == nil || *tg.Request.Temperature != 0 {
				t.Errorf("temperature = %v, want pointer to 0", tg.Request.Temperature)
			}
		}},
		{"explicit zero warmup requests kept", []string{"    warmup:", "      requests: 0"}, func(t *testing.T, tg Target) {
			if tg.Warmup.Requests != 0 {
				t.Errorf("requests = %d, want 0", tg.Warmup.Requests)
			}
		}},
		{"long min duration raises max", []string{"    warmup:", "      min_duration: 10m"}, func(t *testing.T, tg Target) {
			if tg.Warmup.MaxDuration != 10*time.Minute {
				t.Errorf("max_duration = %v", tg.Warmup.MaxDuration)
			}
		}},
		{"short max duration lowers min", []string{"    warmup:", "      max_duration: 5s"}, func(t *testing.T, tg Target) {
			if tg.Warmup.MinDuration != 5*time.Second {
				t.Errorf("min_duration = %v", tg.Warmup.MinDuration)
			}
		}},
		{"null value means unset", []string{"    traffic:", "      max_in_flight:"}, func(t *testing.T, tg Target) {
			if tg.Traffic.MaxInFlight != DefaultMaxInFlight {
				t.Errorf("max_in_flight = %v, want default %d", tg.Traffic.MaxInFlight, DefaultMaxInFlight)
			}
		}},
		{"no metrics block means no scrape", nil, func(t *testing.T, tg Target) {
			if tg.Metrics != nil {
				t.Errorf("metrics = %+v, want nil", tg.Metrics)
			}
		}},
		{"empty metrics block enables scrape with defaults", []string{"    metrics: {}"}, func(t *testing.T, tg Target) {
			want := &Metrics{URL: "http://127.0.0.1:8000/metrics", Interval: 15 * time.Second, Timeout: 10 * time.Second, Engine: "auto"}
			if !reflect.DeepEqual(tg.Metrics, want) {
				t.Errorf("metrics = %+v, want %+v", tg.Metrics, want)
			}
		}},
		{"null metrics block enables scrape too", []string{"    metrics:"}, func(t *testing.T, tg Target) {
			if tg.Metrics == nil || tg.Metrics.URL != "http://127.0.0.1:8000/metrics" {
				t.Errorf("metrics = %+v", tg.Metrics)
			}
		}},
		{"short interval lowers metrics timeout", []string{"    metrics:", "      interval: 5s"}, func(t *testing.T, tg Target) {
			if tg.Metrics.Timeout != 5*time.Second {
				t.Errorf("metrics timeout = %v", tg.Metrics.Timeout)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParse(t, base(tt.extra...)).Targets[0])
		})
	}
}

func TestMetricsURLDefaultKeepsBasePath(t *testing.T) {
	c := mustParse(t, doc("targets:", "  - name: t", "    url: https://gw.example.com/team-a/", "    model: m", "    metrics: {}"))
	if got := c.Targets[0].Metrics.URL; got != "https://gw.example.com/team-a/metrics" {
		t.Errorf("metrics url = %q", got)
	}
}

func TestApplyDefaultsThenValidateCodeConfig(t *testing.T) {
	c := &Config{Targets: []Target{{Name: "x", URL: "http://127.0.0.1:1", Model: "m"}}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Targets[0].Traffic.MaxInFlight != DefaultMaxInFlight || c.Targets[0].Request.MaxTokens != DefaultMaxTokens {
		t.Errorf("defaults not applied: %+v", c.Targets[0])
	}
	// Validate without positions still names the field.
	c.Targets[0].Traffic.MaxInFlight = -1
	errs := asErrors(t, c.Validate())
	checkErrors(t, errs, []wantErr{{"targets[0].traffic.max_in_flight", 0, "must be ≥ 1"}})
	if got := errs.Error(); got != "targets[0].traffic.max_in_flight: must be ≥ 1" {
		t.Errorf("Error() = %q", got)
	}
}
