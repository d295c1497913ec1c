package prober

import "time"

// Observers fans every event out to each observer in order, so one run feeds the Prometheus
// collector, a report builder and tests alike.
type Observers []Observer

var _ Observer = Observers(nil)

// RequestStarted implements Observer.
func (os Observers) RequestStarted(t *TargetInfo) {
	for _, o := range os {
		o.RequestStarted(t)
	}
}

// RequestFinished implements Observer.
func (os Observers) RequestFinished(r *Record) {
	for _, o := range os {
		o.RequestFinished(r)
	}
}

// RequestDropped implements Observer.
func (os Observers) RequestDropped(t *TargetInfo) {
	for _, o := range os {
		o.RequestDropped(t)
	}
}

// WarmupChanged implements Observer.
func (os Observers) WarmupChanged(t *TargetInfo, complete, forced bool) {
	for _, o := range os {
		o.WarmupChanged(t, complete, forced)
	}
}

// ColdStart implements Observer.
func (os Observers) ColdStart(t *TargetInfo, ttft time.Duration) {
	for _, o := range os {
		o.ColdStart(t, ttft)
	}
}

// TargetRate implements Observer.
func (os Observers) TargetRate(t *TargetInfo, rps float64) {
	for _, o := range os {
		o.TargetRate(t, rps)
	}
}
