package measure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// Defaults of the options.
const (
	// DefaultOps is the number of timed operations per phase.
	DefaultOps = 10_000
	// DefaultWarmup is the number of untimed operations before each phase.
	DefaultWarmup = 1_000
	// DefaultMinDuration is the least time the lookups of a phase are timed
	// for, whatever WithOps says, so that a fast Store gives enough samples
	// for a steady p99.
	DefaultMinDuration = 250 * time.Millisecond
	// DefaultMaxDuration bounds each phase; a phase that reaches it stops
	// early and reports the operations it ran.
	DefaultMaxDuration = 3 * time.Second
	// DefaultKeys is the number of revoked ids, and of unrevoked ids, the
	// lookups cycle through.
	DefaultKeys = 1_000
	// DefaultLifetime is how long the revocations made by Measure last.
	DefaultLifetime = time.Hour
)

// groupTarget is the least time a timed sample should take: operations
// faster than this are timed in groups, so that reading the clock does not
// count as part of them.
const groupTarget = 2 * time.Microsecond

// maxGroup bounds the size of a group of operations timed together.
const maxGroup = 1000

// rounds is how many turns a Store and its baseline each take in every
// phase, in the order A B B A A B B A ..., so that both see the same state
// of the machine and drift (a warming cache, a noisy neighbour) falls on
// both alike.
const rounds = 8

// fillWorkers is how many goroutines revoke the id set before timing, so
// that a store that batches writes (boltstore) fills it in a few commits.
const fillWorkers = 64

// Option configures Measure, Run, Time and Parallel.
type Option func(*config)

type config struct {
	ops         int
	warmup      int
	minDuration time.Duration
	maxDuration time.Duration
	parallelism int
	keys        int
	lifetime    time.Duration
	baseline    blocklist.Store
	baseName    string
	errs        []error
}

// WithOps sets the least number of timed operations per phase (default
// DefaultOps); lookups go on until WithMinDuration has passed too. The
// parallel phase runs this many per goroutine, the Revoke phase exactly this
// many. Every phase stops at WithMaxDuration. n must be at least 1. Run
// ignores it: testing.B chooses its own counts.
func WithOps(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithOps(%d): want at least 1", n))
			return
		}
		c.ops = n
	}
}

// WithWarmup sets the number of untimed operations before each phase
// (default DefaultWarmup), each of them checked like a timed one. A warm-up
// stops early after a quarter of WithMaxDuration; Measure lengthens the
// warm-up of lookups to ask for every id once. At least 16 more untimed
// operations follow, timed together to choose the size of the groups fast
// operations are timed in (see the package documentation); Latency.Warmup
// counts them too. Run ignores it.
func WithWarmup(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithWarmup(%d): want 0 or more", n))
			return
		}
		c.warmup = n
	}
}

// WithMinDuration sets the least time the lookups of a phase (and the
// parallel phase) are timed for, even past WithOps operations (default
// DefaultMinDuration), so that a Store that answers in nanoseconds still
// gives many samples. Zero times exactly WithOps operations. The Revoke
// phase ignores it: each Revoke needs a fresh id, made before timing. d must
// not be negative. Run ignores it.
func WithMinDuration(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithMinDuration(%v): want 0 or more", d))
			return
		}
		c.minDuration = d
	}
}

// WithBaseline makes Measure time raw beside the Store, usually a Baseline
// wrapping the raw client the Store is built on. In every phase the two
// take turns, eight each (store, raw, raw, store, store, raw, raw, store,
// and so on), so that both meet the same state of the machine and the server;
// Result.Baseline holds raw's figures, named name. Each gets its own ids.
// Time, Parallel and Run ignore it.
func WithBaseline(name string, raw blocklist.Store) Option {
	return func(c *config) {
		if raw == nil {
			c.errs = append(c.errs, fmt.Errorf("WithBaseline(%q, nil): want a Store", name))
			return
		}
		c.baseline, c.baseName = raw, name
	}
}

// WithMaxDuration bounds the timed part of each phase (default
// DefaultMaxDuration): a phase that reaches it stops before WithOps
// operations and reports how many it ran. It keeps a store whose writes wait
// for a disk (boltstore's Revoke) from taking minutes. d must be positive.
// Run ignores it.
func WithMaxDuration(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxDuration(%v): want a positive duration", d))
			return
		}
		c.maxDuration = d
	}
}

// WithParallelism sets the number of goroutines of the parallel phase
// (default GOMAXPROCS). n must be at least 1. Run ignores it and uses
// testing.B.RunParallel.
func WithParallelism(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithParallelism(%d): want at least 1", n))
			return
		}
		c.parallelism = n
	}
}

// WithKeys sets how many revoked ids, and how many unrevoked ids, the
// lookups cycle through (default DefaultKeys). They are revoked before
// timing starts. n must be at least 1.
func WithKeys(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithKeys(%d): want at least 1", n))
			return
		}
		c.keys = n
	}
}

// WithLifetime sets how long the revocations made by Measure and Run last
// (default DefaultLifetime); they are written with exp = now + d. It must
// outlast the measurement, or revoked ids start answering false, which is
// reported as an error. Against a shared server, a short lifetime lets the
// benchmark's entries vanish soon after. d must be positive.
func WithLifetime(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithLifetime(%v): want a positive duration", d))
			return
		}
		c.lifetime = d
	}
}

func newConfig(opts []Option) (config, error) {
	c := config{
		ops:         DefaultOps,
		warmup:      DefaultWarmup,
		minDuration: DefaultMinDuration,
		maxDuration: DefaultMaxDuration,
		parallelism: runtime.GOMAXPROCS(0),
		keys:        DefaultKeys,
		lifetime:    DefaultLifetime,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if c.minDuration > c.maxDuration {
		c.minDuration = c.maxDuration
	}
	if len(c.errs) > 0 {
		return c, fmt.Errorf("measure: %w", errors.Join(c.errs...))
	}
	return c, nil
}

// Result is what Measure found for one Store.
type Result struct {
	// Name is the name given to Measure.
	Name string
	// Keys is the number of revoked ids, and of unrevoked ids, the lookups
	// cycled through.
	Keys int
	// Revoked is IsRevoked on an id that is revoked.
	Revoked Latency
	// Unrevoked is IsRevoked on an id that was never revoked, the answer
	// almost every request gets.
	Unrevoked Latency
	// Revoke is Revoke of an id not revoked before, as on a logout.
	Revoke Latency
	// Parallel is IsRevoked from many goroutines at once, half on revoked
	// ids and half on unrevoked ones.
	Parallel Throughput
	// Baseline holds the figures of the Store given to WithBaseline,
	// measured in turns with this one; nil without WithBaseline.
	Baseline *Result
}

// Latency is the distribution of the duration of one operation.
type Latency struct {
	// P50 and P99 are the median and 99th percentile. Max is the slowest
	// sample, Mean the total time divided by Ops.
	P50, P99, Max, Mean time.Duration
	// Ops is the number of timed operations: more than WithOps when
	// WithMinDuration had not passed after them, fewer when the phase
	// reached WithMaxDuration. Warmup is the number of untimed ones before
	// them.
	Ops, Warmup int
	// Group is the number of operations timed together per clock reading:
	// 1 for operations slower than about 2 µs (see the package
	// documentation).
	Group int
	// AllocsPerOp is the number of heap allocations per timed operation,
	// from runtime.MemStats. Allocations by other goroutines of the
	// process during the phase count too.
	AllocsPerOp float64
}

// Throughput is the rate of operations run from many goroutines at once.
type Throughput struct {
	// OpsPerSec is Ops divided by Elapsed.
	OpsPerSec float64
	// Ops is the number of operations completed, Warmup the number of
	// untimed ones before them.
	Ops, Warmup int
	// Goroutines is the number of goroutines that ran them.
	Goroutines int
	// Elapsed is the time from the start of the first goroutine's timed
	// operations to the end of the last one's.
	Elapsed time.Duration
}

// Baseline is a raw client's lookup and write wrapped as a blocklist.Store,
// so that Measure and Run time it exactly as they time the Store built on
// that client: same workload, same server, same run. It keeps none of the
// contract (no id checks, no monotonic writes): it is the floor that a
// Store's cost is compared with.
//
// Both funcs must be set. IsRevokedFunc must answer true for an id that
// RevokeFunc stored with an exp still in the future, and false for an id it
// never stored.
type Baseline struct {
	RevokeFunc    func(ctx context.Context, jti string, exp time.Time) error
	IsRevokedFunc func(ctx context.Context, jti string) (bool, error)
}

// Revoke calls b.RevokeFunc.
func (b Baseline) Revoke(ctx context.Context, jti string, exp time.Time) error {
	return b.RevokeFunc(ctx, jti, exp)
}

// IsRevoked calls b.IsRevokedFunc.
func (b Baseline) IsRevoked(ctx context.Context, jti string) (bool, error) {
	return b.IsRevokedFunc(ctx, jti)
}

// Measure runs s through the workload described in the package
// documentation and returns what it found. name only labels the result and
// errors. Measure adds revocations to s (WithKeys ids at setup, one per
// timed Revoke), each lasting WithLifetime; give it a store, or a key
// prefix, of its own. With WithBaseline, the baseline is measured in turns
// with s, phase by phase.
//
// Any error of s, and any wrong answer (false for a revoked id, true for
// one never revoked), ends the measurement with an error naming the store
// and the phase. So does ctx being done; a long measurement stops at the
// next operation.
func Measure(ctx context.Context, name string, s blocklist.Store, opts ...Option) (Result, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return Result{}, err
	}
	if s == nil {
		return Result{}, fmt.Errorf("measure: %s: nil Store", name)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("measure: %s: %w", name, err)
	}
	subjects := []*subject{{name: name, s: s}}
	if cfg.baseline != nil {
		subjects = append(subjects, &subject{name: cfg.baseName, s: cfg.baseline})
	}
	for _, sub := range subjects {
		if sub.w, err = newWorkload(ctx, sub.s, cfg.keys, cfg.lifetime); err != nil {
			return Result{}, fmt.Errorf("measure: %s: setup: %w", sub.name, err)
		}
		sub.res = Result{Name: sub.name, Keys: cfg.keys}
	}

	// turns lists whose turn each round is: A B B A A B B A ... with a
	// baseline, A alone without.
	var turns []*subject
	if len(subjects) == 1 {
		turns = subjects
	} else {
		for r := range rounds {
			if r%2 == 0 {
				turns = append(turns, subjects[0], subjects[1])
			} else {
				turns = append(turns, subjects[1], subjects[0])
			}
		}
	}
	perTurn := len(turns) / len(subjects)
	share := func(n int) int { return (n + perTurn - 1) / perTurn }
	shareD := func(d time.Duration) time.Duration { return d / time.Duration(perTurn) }

	// Lookups: the warm-up asks for every id once, so that a cache in the
	// Store starts the timed part as it would run for long.
	serial := []struct {
		phase string
		op    func(w *workload) Op
		res   func(r *Result) *Latency
		warm  int
	}{
		{"IsRevoked of revoked ids", func(w *workload) Op { return w.isRevoked }, func(r *Result) *Latency { return &r.Revoked }, max(cfg.warmup, cfg.keys)},
		{"IsRevoked of unrevoked ids", func(w *workload) Op { return w.isNotRevoked }, func(r *Result) *Latency { return &r.Unrevoked }, max(cfg.warmup, cfg.keys)},
		{"Revoke", func(w *workload) Op { return w.revoke }, func(r *Result) *Latency { return &r.Revoke }, cfg.warmup},
	}
	for _, l := range serial {
		isRevoke := l.phase == "Revoke"
		phases := map[*subject]*latencyPhase{}
		for _, sub := range subjects {
			if isRevoke {
				// Fresh ids are made before the phase, so that formatting
				// them is not timed; the warm-up takes the first ones
				// (and the calibration after it, up to maxGroup).
				sub.w.fresh = sub.w.ids.make('n', 0, cfg.warmup+maxGroup+cfg.ops)
			}
			p := &latencyPhase{op: l.op(sub.w)}
			if err := p.warmUp(ctx, l.warm, cfg.maxDuration/4); err != nil {
				return Result{}, fmt.Errorf("measure: %s: %s: %w", sub.name, l.phase, err)
			}
			phases[sub] = p
		}
		minD := cfg.minDuration
		if isRevoke {
			minD = 0
		}
		for _, sub := range turns {
			p := phases[sub]
			left := cfg.ops - p.ops
			if isRevoke && left <= 0 {
				continue // out of fresh ids
			}
			if err := p.run(ctx, max(1, min(share(cfg.ops), left)), shareD(minD), shareD(cfg.maxDuration)); err != nil {
				return Result{}, fmt.Errorf("measure: %s: %s: %w", sub.name, l.phase, err)
			}
		}
		for _, sub := range subjects {
			*l.res(&sub.res) = phases[sub].latency()
			sub.w.fresh = nil
		}
	}

	// Parallel lookups, half on revoked ids; the warm-up again asks for
	// every id.
	par := map[*subject]*parallelPhase{}
	for _, sub := range subjects {
		p := &parallelPhase{op: sub.w.mixed, goroutines: cfg.parallelism}
		if err := p.warmUp(ctx, max(cfg.warmup, 2*cfg.keys), cfg.maxDuration/4); err != nil {
			return Result{}, fmt.Errorf("measure: %s: parallel IsRevoked: %w", sub.name, err)
		}
		par[sub] = p
	}
	for _, sub := range turns {
		if err := par[sub].run(ctx, share(cfg.ops*cfg.parallelism), shareD(cfg.minDuration), shareD(cfg.maxDuration)); err != nil {
			return Result{}, fmt.Errorf("measure: %s: parallel IsRevoked: %w", sub.name, err)
		}
	}
	for _, sub := range subjects {
		sub.res.Parallel = par[sub].throughput()
	}

	res := subjects[0].res
	if len(subjects) == 2 {
		res.Baseline = &subjects[1].res
	}
	return res, nil
}

// subject is a Store being measured, and what was found so far.
type subject struct {
	name string
	s    blocklist.Store
	w    *workload
	res  Result
}

// workload holds the ids and the store one measurement runs on.
type workload struct {
	s         blocklist.Store
	ids       idSource
	exp       time.Time
	revoked   []string
	unrevoked []string
	fresh     []string
}

// newWorkload makes the id sets and revokes the first one in s.
func newWorkload(ctx context.Context, s blocklist.Store, keys int, lifetime time.Duration) (*workload, error) {
	ids, err := newIDSource()
	if err != nil {
		return nil, err
	}
	w := &workload{
		s:         s,
		ids:       ids,
		exp:       time.Now().Add(lifetime),
		revoked:   ids.make('r', 0, keys),
		unrevoked: ids.make('u', 0, keys),
	}
	if err := RevokeAll(ctx, s, w.revoked, w.exp); err != nil {
		return nil, err
	}
	return w, nil
}

var (
	errFalseNegative = errors.New("answered false for a revoked id")
	errFalsePositive = errors.New("answered true for an id never revoked")
)

func (w *workload) isRevoked(ctx context.Context, i int) error {
	jti := w.revoked[i%len(w.revoked)]
	ok, err := w.s.IsRevoked(ctx, jti)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("IsRevoked(%q) %w", jti, errFalseNegative)
	}
	return nil
}

func (w *workload) isNotRevoked(ctx context.Context, i int) error {
	jti := w.unrevoked[i%len(w.unrevoked)]
	ok, err := w.s.IsRevoked(ctx, jti)
	if err != nil {
		return err
	}
	if ok {
		return fmt.Errorf("IsRevoked(%q) %w", jti, errFalsePositive)
	}
	return nil
}

// prime asks for every id once, so that a cache in the Store is warm.
func (w *workload) prime(ctx context.Context) error {
	for i := range w.revoked {
		if err := w.isRevoked(ctx, i); err != nil {
			return err
		}
	}
	for i := range w.unrevoked {
		if err := w.isNotRevoked(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

func (w *workload) revoke(ctx context.Context, i int) error {
	return w.s.Revoke(ctx, w.fresh[i], w.exp)
}

func (w *workload) mixed(ctx context.Context, i int) error {
	if i%2 == 0 {
		return w.isRevoked(ctx, i/2)
	}
	return w.isNotRevoked(ctx, i/2)
}

// RevokeAll revokes every id of ids in s until exp, from up to 64
// goroutines at once, so that a store that groups concurrent writes (as
// boltstore does) takes few commits. It returns the first error, and stops
// early when ctx is done. Measure uses it to prepare its revoked ids; tools
// use it to fill a store before timing lookups with Time.
func RevokeAll(ctx context.Context, s blocklist.Store, ids []string, exp time.Time) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := min(fillWorkers, len(ids))
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(ids); i += workers {
				if ctx.Err() != nil {
					return
				}
				if err := s.Revoke(ctx, ids[i], exp); err != nil {
					cancel(fmt.Errorf("Revoke(%q): %w", ids[i], err))
					return
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// idSource makes token ids shaped like UUIDs (36 bytes, as most issuers'
// jti), unique to one source: the first 8 bytes are random.
type idSource struct{ nonce string }

func newIDSource() (idSource, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return idSource{}, fmt.Errorf("random id prefix: %w", err)
	}
	return idSource{nonce: hex.EncodeToString(b[:])}, nil
}

// make returns n ids of the given kind, numbered from first.
func (s idSource) make(kind byte, first, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = s.id(kind, first+i)
	}
	return ids
}

// id returns the i-th id of a kind: 8 random hex digits, the kind and the
// number in hex, in the 8-4-4-4-12 shape of a UUID.
func (s idSource) id(kind byte, i int) string {
	return fmt.Sprintf("%s-%c000-4000-8000-%012x", s.nonce, kind, uint64(i)&0xffff_ffff_ffff)
}
