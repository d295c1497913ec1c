package server

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector serves the snapshots of many scrapers, one per target, as one unchecked
// prometheus.Collector. Register it once; on a config reload, Add the new scrapers (an Add
// replaces the scraper of the same target) and Remove the targets that went away. It never
// starts or stops scrapers: whoever calls Run owns them.
type Collector struct {
	mu       sync.RWMutex
	scrapers []*Scraper // sorted by target, so passthrough conflicts resolve the same way every time
}

// NewCollector returns an empty collector.
func NewCollector() *Collector { return &Collector{} }

// Add serves s, replacing any scraper with the same target.
func (c *Collector) Add(s *Scraper) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := sort.Search(len(c.scrapers), func(i int) bool { return c.scrapers[i].target >= s.target })
	if i < len(c.scrapers) && c.scrapers[i].target == s.target {
		c.scrapers[i] = s
		return
	}
	c.scrapers = append(c.scrapers, nil)
	copy(c.scrapers[i+1:], c.scrapers[i:])
	c.scrapers[i] = s
}

// Remove stops serving the target's series and returns the scraper that served them, or nil.
func (c *Collector) Remove(target string) *Scraper {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := sort.Search(len(c.scrapers), func(i int) bool { return c.scrapers[i].target >= target })
	if i == len(c.scrapers) || c.scrapers[i].target != target {
		return nil
	}
	s := c.scrapers[i]
	c.scrapers = append(c.scrapers[:i], c.scrapers[i+1:]...)
	return s
}

// Get returns the scraper serving target, or nil; a reload uses it to find the scraper to
// replace (and Inherit from).
func (c *Collector) Get(target string) *Scraper {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i := sort.Search(len(c.scrapers), func(i int) bool { return c.scrapers[i].target >= target })
	if i == len(c.scrapers) || c.scrapers[i].target != target {
		return nil
	}
	return c.scrapers[i]
}

// Describe implements prometheus.Collector; it sends nothing (an unchecked collector).
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector: the last snapshot of every scraper, in target order.
// A passthrough family that an earlier target exposes with an incompatible type is left out for
// the later target.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	snaps := make([]*snapshot, len(c.scrapers))
	for i, s := range c.scrapers {
		snaps[i] = s.snap.Load()
	}
	c.mu.RUnlock()
	adm := admission{}
	for _, snap := range snaps {
		snap.send(ch, adm)
	}
}
