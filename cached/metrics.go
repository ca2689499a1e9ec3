package cached

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the Store's meter: the
// package's import path.
const ScopeName = "github.com/jwtblocklist/blocklist/cached"

// Results of a check, the values of the attribute "cached.result" of
// cached.lookups.
const (
	ResultHit          = "hit"            // answered from memory (Stats.Hits)
	ResultMiss         = "miss"           // waited for a lookup in the next Store (Stats.Misses)
	ResultError        = "error"          // a call to the next Store failed (Stats.Errors)
	ResultStaleIfError = "stale_if_error" // answered stale after a failure, also a hit or a miss (WithStaleIfError; Stats.StaleAnswers)
)

// MarshalText returns the name String returns, so a WatchState reads
// well in JSON and in structured logs.
func (w WatchState) MarshalText() ([]byte, error) {
	return []byte(w.String()), nil
}

// WithLogger sets the logger the Store reports its watch through (default
// slog.Default(), read at each record): each change of the watch's state,
// at Warn when it is lost, at Info otherwise. A nil logger makes New
// return an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger(nil): logger must not be nil")
			return
		}
		c.observe.logger = l
	}
}

// WithMeterProvider sets where the Store's metrics go (default the global
// provider, otel.GetMeterProvider(), read by New). The instruments are
// listed in the package documentation, "Metrics". A nil provider makes New
// return an error.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.fail("WithMeterProvider(nil): provider must not be nil")
			return
		}
		c.observe.meterProvider = mp
	}
}

// observeConfig is what WithLogger and WithMeterProvider set.
type observeConfig struct {
	logger        *slog.Logger
	meterProvider metric.MeterProvider
}

// observer reports a Store's metrics and logs. The counters of Stats are
// read by a callback at each collection, so a check records nothing: a hit
// costs the same with or without a meter provider. Only what Stats does
// not hold is recorded as it happens, off the hit path: the duration of a
// call to the next Store and the lag of each announcement applied.
type observer struct {
	logger   *slog.Logger // nil: slog.Default()
	backend  metric.Float64Histogram
	lag      metric.Float64Histogram
	callback metric.Registration
}

// durationBuckets suit a call to a networked Store (a fraction of a
// millisecond on loopback) up to a timeout, and a watch's lag.
var durationBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
	0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// newObserver makes the instruments of s and registers the callback that
// reads its counters.
func newObserver(s *Store, c observeConfig) *observer {
	o := &observer{logger: c.logger}
	mp := c.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	o.backend, err = m.Float64Histogram("cached.backend.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of the calls to the next Store: lookups on a miss, batch lookups."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	add(err)
	o.lag, err = m.Float64Histogram("cached.watch.lag", metric.WithUnit("s"),
		metric.WithDescription("Time from a revocation's announcement, as the backend timestamps it, to its application here."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	add(err)
	lookups, err := m.Int64ObservableCounter("cached.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Checks by result: hit, miss, error, stale_if_error."))
	add(err)
	entries, err := m.Int64ObservableUpDownCounter("cached.entries", metric.WithUnit("{entry}"),
		metric.WithDescription("Entries the cache holds."))
	add(err)
	evictions, err := m.Int64ObservableCounter("cached.evictions", metric.WithUnit("{entry}"),
		metric.WithDescription("Entries dropped to make room for another."))
	add(err)
	state, err := m.Int64ObservableUpDownCounter("cached.watch.status", metric.WithUnit("{watch}"),
		metric.WithDescription("1 for the state the watch of the next Store is in (attribute cached.watch.state: off, starting, live, lost), 0 for the others."))
	add(err)
	events, err := m.Int64ObservableCounter("cached.watch.events", metric.WithUnit("{revocation}"),
		metric.WithDescription("Revocations the watch delivered."))
	add(err)
	replicaSize, err := m.Int64ObservableUpDownCounter("cached.replica.size", metric.WithUnit("{revocation}"),
		metric.WithDescription("Revocations the replica holds (replica mode only)."))
	add(err)
	sinceSync, err := m.Float64ObservableGauge("cached.replica.time_since_sync", metric.WithUnit("s"),
		metric.WithDescription("Time since the replica last completed a full load of the next Store (replica mode, once loaded)."))
	add(err)

	result := func(v string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("cached.result", v)))
	}
	hit, miss, failed, stale := result(ResultHit), result(ResultMiss), result(ResultError), result(ResultStaleIfError)
	var states [4]metric.ObserveOption
	for st := WatchOff; st <= WatchLost; st++ {
		states[st] = metric.WithAttributeSet(attribute.NewSet(attribute.String("cached.watch.state", st.String())))
	}
	o.callback, err = m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		st := s.Stats()
		obs.ObserveInt64(lookups, int64(st.Hits), hit)
		obs.ObserveInt64(lookups, int64(st.Misses), miss)
		obs.ObserveInt64(lookups, int64(st.Errors), failed)
		obs.ObserveInt64(lookups, int64(st.StaleAnswers), stale)
		obs.ObserveInt64(evictions, int64(st.Evictions))
		obs.ObserveInt64(events, int64(st.WatchEvents))
		s.mu.Lock()
		n := s.lru.Len()
		s.mu.Unlock()
		obs.ObserveInt64(entries, int64(n))
		for i, opt := range states {
			v := int64(0)
			if WatchState(i) == st.Watch {
				v = 1
			}
			obs.ObserveInt64(state, v, opt)
		}
		if s.replica != nil {
			obs.ObserveInt64(replicaSize, int64(st.ReplicaSize))
			if at := s.replica.lastLoad.Load(); at != 0 {
				obs.ObserveFloat64(sinceSync, time.Since(time.Unix(0, at)).Seconds())
			}
		}
		return nil
	}, lookups, entries, evictions, state, events, replicaSize, sinceSync)
	add(err)
	if err := errors.Join(errs...); err != nil {
		// An SDK that refuses an instrument still returns a no-op one: say
		// so rather than fail New over telemetry.
		o.log().Warn("cached: creating instruments", "err", err)
	}
	return o
}

func (o *observer) log() *slog.Logger {
	if o.logger != nil {
		return o.logger
	}
	return slog.Default()
}

// backendCall records a call to the next Store that started at start.
func (o *observer) backendCall(start time.Time) {
	o.backend.Record(context.Background(), time.Since(start).Seconds())
}

// applied records a revocation announced at announced (zero: unknown)
// and applied now.
func (o *observer) applied(announced time.Time) {
	if !announced.IsZero() {
		o.lag.Record(context.Background(), max(time.Since(announced).Seconds(), 0))
	}
}

// watchEnded logs that the watch of the next Store returned err before
// Close: the Store goes on without a watch.
func (o *observer) watchEnded(err error) {
	o.log().LogAttrs(context.Background(), slog.LevelWarn, "cached: watch of the next store ended; going on without a watch",
		slog.Any("err", err))
}

// stateChanged logs a change of the watch's state.
func (o *observer) stateChanged(from, to WatchState) {
	if from == to {
		return
	}
	level := slog.LevelInfo
	if to == WatchLost {
		level = slog.LevelWarn
	}
	o.log().LogAttrs(context.Background(), level, "cached: watch of the next store "+to.String(),
		slog.Any("from", from), slog.Any("to", to))
}

// close stops the callback: a closed Store reports no more metrics. Close
// calls it once.
func (o *observer) close() {
	if o.callback != nil {
		_ = o.callback.Unregister()
	}
}
