package accelerator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

func TestAddFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{name: "defaults", args: nil, want: Options{Enabled: true, Interval: 5 * time.Second}},
		{name: "disabled", args: []string{"--no-collector.accelerator"}, want: Options{Enabled: false, Interval: 5 * time.Second}},
		{name: "explicitly enabled", args: []string{"--collector.accelerator"}, want: Options{Enabled: true, Interval: 5 * time.Second}},
		{
			name: "devices and interval",
			args: []string{"--collector.accelerator.devices= 0, GPU-5e1b0c2a-1111-2222-3333-444455556666 ,,3", "--collector.accelerator.interval=10s"},
			want: Options{Enabled: true, Devices: []string{"0", "GPU-5e1b0c2a-1111-2222-3333-444455556666", "3"}, Interval: 10 * time.Second},
		},
		{name: "MIG UUID", args: []string{"--collector.accelerator.devices=MIG-abc"},
			want: Options{Enabled: true, Devices: []string{"MIG-abc"}, Interval: 5 * time.Second}},
		{name: "empty list means all", args: []string{"--collector.accelerator.devices="},
			want: Options{Enabled: true, Interval: 5 * time.Second}},
		{name: "not a selector", args: []string{"--collector.accelerator.devices=0,first"}, wantErr: `"first" is neither`},
		{name: "bad interval", args: []string{"--collector.accelerator.interval=soon"}, wantErr: "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := kingpin.New("test", "")
			app.Terminate(nil)
			opts := AddFlags(app)
			_, err := app.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if opts.Enabled != tt.want.Enabled || opts.Interval != tt.want.Interval || !slices.Equal(opts.Devices, tt.want.Devices) {
				t.Errorf("options = %+v, want %+v", *opts, tt.want)
			}
			if err := opts.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"defaults", DefaultOptions(), ""},
		{"minimum interval", Options{Interval: MinInterval}, ""},
		{"too short", Options{Interval: MinInterval - 1}, "shorter than the minimum"},
		{"zero", Options{}, "shorter than the minimum"},
		{"empty device", Options{Interval: time.Second, Devices: []string{"0", ""}}, "empty device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.wantErr == "" && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSelector(t *testing.T) {
	s := newSelector([]string{"1", "gpu-abc", "9", "GPU-zzz"})
	tests := []struct {
		index int
		uuid  string
		want  bool
	}{
		{0, "GPU-000", false},
		{1, "GPU-111", true},
		{2, "GPU-ABC", true},
		{3, "gpu-abc", true},
	}
	for _, tt := range tests {
		if got := s.match(tt.index, tt.uuid); got != tt.want {
			t.Errorf("match(%d, %s) = %v, want %v", tt.index, tt.uuid, got, tt.want)
		}
	}
	if got, want := s.unmatched(), []string{"9", "GPU-ZZZ"}; !slices.Equal(got, want) {
		t.Errorf("unmatched = %v, want %v", got, want)
	}
	if all := newSelector(nil); !all.match(5, "GPU-x") || len(all.unmatched()) != 0 {
		t.Error("an empty selector must match every GPU and leave nothing unmatched")
	}
}

func TestNewDefaultsInterval(t *testing.T) {
	c := New(NewLibrary(), Options{Enabled: true}, nil)
	if c.opts.Interval != DefaultInterval || c.staleAfter != staleIntervals*DefaultInterval {
		t.Errorf("interval %s, stale after %s; want the defaults", c.opts.Interval, c.staleAfter)
	}
}

func TestCUDAVersionString(t *testing.T) {
	for v, want := range map[int]string{12040: "12.4", 11080: "11.8", 13000: "13.0", 12090: "12.9"} {
		if got := cudaVersionString(v); got != want {
			t.Errorf("cudaVersionString(%d) = %q, want %q", v, got, want)
		}
	}
}
