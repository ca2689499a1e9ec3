package jwtguard

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the Guard's meter: the
// package's import path.
const ScopeName = "github.com/jwtblocklist/blocklist/jwtguard"

// Outcomes of a request, the values of the attribute "jwtguard.outcome"
// of jwtguard.requests and jwtguard.check.duration.
const (
	OutcomeAccepted    = "accepted"     // a valid token, not revoked: served
	OutcomeNoToken     = "no_token"     // no token: 401
	OutcomeInvalid     = "invalid"      // a token that failed a check: 401
	OutcomeRevoked     = "revoked"      // a revoked token (or session, or subject): 401
	OutcomeStoreError  = "store_error"  // the Store could not answer: the ErrorHandler (503)
	OutcomeFailedOpen  = "failed_open"  // the Store could not answer; let through (WithFailOpen)
	OutcomeCrossOrigin = "cross_origin" // a cookie request refused by WithCrossOriginProtection: 403
)

// Attribute keys of the Guard's instruments.
const (
	attrOutcome = "jwtguard.outcome"
	attrKind    = "jwtguard.revocation.kind"
)

// WithLogger sets the logger the Guard reports through (default
// slog.Default(), read at each record): Store failures at Error with the
// error, refusals at Debug with the reason (never the token), a detected
// reuse of a refresh token at Warn with the sid and sub of its session. A
// nil logger makes New return an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger(nil): logger must not be nil")
			return
		}
		c.observe.logger = l
	}
}

// WithMeterProvider sets where the Guard's metrics go (default the global
// provider, otel.GetMeterProvider(), read by New). The instruments are
// listed in the package documentation, "Metrics". A nil provider makes
// New return an error.
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

// observer holds what a Guard reports through: its logger and its
// instruments, with every attribute set built once, so that recording
// allocates nothing.
type observer struct {
	logger *slog.Logger // nil: slog.Default()
	clock  func() time.Time

	requests, revocations metric.Int64Counter
	duration              metric.Float64Histogram

	outcome map[string]metric.MeasurementOption
	kind    map[string]map[string]metric.MeasurementOption // kind, outcome
}

// durationBuckets suit a check: microseconds from a cache, milliseconds
// over a network, seconds when a Store is timing out.
var durationBuckets = []float64{
	0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

func newObserver(c *config, sess *sessions) *observer {
	o := &observer{logger: c.observe.logger, clock: c.now}
	if o.clock == nil {
		o.clock = time.Now
	}
	mp := c.observe.meterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		ctr, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return ctr
	}
	o.requests = counter("jwtguard.requests", "{request}", "Requests checked by the middleware and Verify, by outcome.")
	o.revocations = counter("jwtguard.revocations", "{revocation}", "Store entries written to revoke a token, a session or a subject, by kind and outcome.")
	var err error
	o.duration, err = m.Float64Histogram("jwtguard.check.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time to check a token: parse, verify and ask the Store, by outcome."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	if sess != nil {
		// The session counters are the Guard's own (SessionStats), read
		// at each collection.
		refreshes, err := m.Int64ObservableCounter("jwtguard.refreshes", metric.WithUnit("{refresh}"),
			metric.WithDescription("Refresh tokens exchanged for the first time."))
		errs = append(errs, err)
		replays, err := m.Int64ObservableCounter("jwtguard.refresh.grace_replays", metric.WithUnit("{replay}"),
			metric.WithDescription("Refresh calls answered, within the grace period, with the successor pair of a refresh token exchanged before."))
		errs = append(errs, err)
		reuses, err := m.Int64ObservableCounter("jwtguard.refresh.reuse_detections", metric.WithUnit("{detection}"),
			metric.WithDescription("Spent refresh tokens presented again, each revoking its session."))
		errs = append(errs, err)
		_, err = m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
			obs.ObserveInt64(refreshes, int64(sess.refreshes.Load()))
			obs.ObserveInt64(replays, int64(sess.graceReplays.Load()))
			obs.ObserveInt64(reuses, int64(sess.reuses.Load()))
			return nil
		}, refreshes, replays, reuses)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		// An SDK refusing an instrument still returns a usable no-op one;
		// say so once rather than fail New over telemetry.
		o.log().Warn("jwtguard: creating instruments", "err", err)
	}
	set := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(kv...))
	}
	o.outcome = map[string]metric.MeasurementOption{}
	for _, v := range []string{OutcomeAccepted, OutcomeNoToken, OutcomeInvalid, OutcomeRevoked,
		OutcomeStoreError, OutcomeFailedOpen, OutcomeCrossOrigin} {
		o.outcome[v] = set(attribute.String(attrOutcome, v))
	}
	o.kind = map[string]map[string]metric.MeasurementOption{}
	for _, k := range []string{KindToken, KindSession, KindSubject} {
		o.kind[k] = map[string]metric.MeasurementOption{}
		for _, v := range []string{outcomeOK, OutcomeStoreError} {
			o.kind[k][v] = set(attribute.String(attrKind, k), attribute.String(attrOutcome, v))
		}
	}
	return o
}

// outcomeOK is the outcome of a revocation written.
const outcomeOK = "ok"

func (o *observer) log() *slog.Logger {
	if o.logger != nil {
		return o.logger
	}
	return slog.Default()
}

func (o *observer) now() time.Time { return o.clock() }

// outcomeOf names the outcome of a check that returned err.
func outcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeAccepted
	case errors.Is(err, ErrNoToken):
		return OutcomeNoToken
	case errors.Is(err, ErrInvalidToken):
		return OutcomeInvalid
	case errors.Is(err, ErrRevoked):
		return OutcomeRevoked
	case errors.Is(err, ErrCrossOrigin):
		return OutcomeCrossOrigin
	}
	return OutcomeStoreError
}

// checked records a request whose check started at start and ended with
// err; failedOpen when the middleware let it through anyway.
func (o *observer) checked(ctx context.Context, start time.Time, err error, failedOpen bool) {
	outcome := outcomeOf(err)
	if failedOpen && outcome == OutcomeStoreError {
		outcome = OutcomeFailedOpen
	}
	opt := o.outcome[outcome]
	o.requests.Add(ctx, 1, opt)
	o.duration.Record(ctx, time.Since(start).Seconds(), opt)
	switch outcome {
	case OutcomeAccepted:
	case OutcomeStoreError, OutcomeFailedOpen:
		o.log().LogAttrs(ctx, slog.LevelError, "jwtguard: the blocklist store failed",
			slog.String("op", "check"), slog.Bool("failed_open", failedOpen), slog.Any("err", err))
	default:
		if l := o.log(); l.Enabled(ctx, slog.LevelDebug) {
			l.LogAttrs(ctx, slog.LevelDebug, "jwtguard: token refused",
				slog.String("outcome", outcome), slog.String("reason", err.Error()))
		}
	}
}

// revoked records a revocation of kind (KindToken, KindSession,
// KindSubject) that ended with err.
func (o *observer) revoked(ctx context.Context, kind string, err error) {
	if err == nil {
		o.revocations.Add(ctx, 1, o.kind[kind][outcomeOK])
		return
	}
	o.revocations.Add(ctx, 1, o.kind[kind][OutcomeStoreError])
	o.storeFailure(ctx, "revoke "+kind, err)
}

// storeFailure logs a Store failure in op.
func (o *observer) storeFailure(ctx context.Context, op string, err error) {
	o.log().LogAttrs(ctx, slog.LevelError, "jwtguard: the blocklist store failed",
		slog.String("op", op), slog.Any("err", err))
}

// reuseDetected records a spent refresh token presented again, which
// revoked the session sid of the subject sub.
func (o *observer) reuseDetected(ctx context.Context, sid, sub string) {
	o.log().LogAttrs(ctx, slog.LevelWarn, "jwtguard: refresh token reused; session revoked",
		slog.String("sid", sid), slog.String("sub", sub))
}

// observedCheck is check, recorded: the middleware's and Verify's one
// path. mayFailOpen is true for the middleware under WithFailOpen.
func (g *Guard) observedCheck(ctx context.Context, raw string, mayFailOpen bool) (*Token, error) {
	start := time.Now()
	t, err := g.check(ctx, raw)
	g.obs.checked(ctx, start, err, mayFailOpen && g.failOpen && t != nil)
	return t, err
}
