package cached

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of the options. They are constants, not variables: a Store's
// settings come only from the options given to New.
const (
	// DefaultSize is the number of entries a Store keeps when WithSize is
	// not given. Memory grows linearly with it and with the ids' length
	// (TestEntrySize bounds an entry's size). It holds every token checked
	// within one NegativeTTL window by a service seeing 50,000 distinct
	// tokens a second, at the default NegativeTTL of one second. A cache too
	// small is never wrong, only slower: a steadily growing Stats.Evictions
	// says to raise it.
	DefaultSize = 50_000

	// DefaultNegativeTTL is how long a "not revoked" answer is reused when
	// WithNegativeTTL is not given.
	DefaultNegativeTTL = time.Second

	// DefaultPositiveTTL is how long a "revoked" answer is reused, when
	// WithPositiveTTL is not given, if the next Store cannot tell when a
	// revocation ends (it is not a blocklist.ExpiryStore). One second keeps
	// contract clause 4 of the root package: IsRevoked turns false at most
	// one second after the token's exp.
	DefaultPositiveTTL = time.Second

	// DefaultLookupTimeout bounds one lookup in the next Store when
	// WithLookupTimeout is not given.
	DefaultLookupTimeout = 5 * time.Second

	// LostLookupTimeout bounds one lookup in the next Store while the
	// watch is lost (Stats.Watch is WatchLost), when WithLookupTimeout is
	// longer: the next Store is then likely unreachable or silent, and a
	// check must fail closed, or answer stale (WithStaleIfError), promptly
	// rather than wait for it.
	LostLookupTimeout = 250 * time.Millisecond

	// DefaultWatchNegativeTTL is how long a "not revoked" answer is reused
	// while the watch is live, when WithWatchNegativeTTL is not given.
	DefaultWatchNegativeTTL = time.Minute
)

// Option configures a Store made by New.
type Option func(*config)

type config struct {
	size          int
	negativeTTL   time.Duration
	positiveTTL   time.Duration
	lookupTimeout time.Duration
	errs          []error

	noWatch          bool
	watchNegativeTTL time.Duration
	replica          bool
	staleIfError     time.Duration
	observe          observeConfig // WithLogger, WithMeterProvider; see metrics.go
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *config) err() error {
	if err := errors.Join(c.errs...); err != nil {
		return fmt.Errorf("cached: %w", err)
	}
	return nil
}

// WithSize sets how many token ids the Store remembers (default
// DefaultSize). The least recently checked entry is dropped to make room.
// n must be at least 1, or New returns an error.
func WithSize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("WithSize(%d): size must be at least 1", n)
			return
		}
		c.size = n
	}
}

// WithNegativeTTL sets how long a "not revoked" answer from the next Store
// is reused when the Store has no watch (default DefaultNegativeTTL, one
// second): a revocation made elsewhere is then seen here at most d after it
// was made. While a watch is live WithWatchNegativeTTL applies instead; see
// "How stale an answer can be" in the package documentation. Zero turns
// negative caching off, so every check of a token that is not revoked asks
// the next Store (concurrent checks of one id still share one call). A
// negative d makes New return an error.
func WithNegativeTTL(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("WithNegativeTTL(%v): must not be negative", d)
			return
		}
		c.negativeTTL = d
	}
}

// WithPositiveTTL sets how long a "revoked" answer is reused when the next
// Store is not a blocklist.ExpiryStore and so cannot tell when the
// revocation ends (default DefaultPositiveTTL, one second). Such an answer
// may stay true up to d after the token's exp, so keep d at one second or
// less to keep contract clause 4. Zero makes every check of a revoked token
// ask the next Store. With an ExpiryStore (every backend of this module) the
// option has no effect: revoked answers are kept exactly until the
// revocation ends. A negative d makes New return an error.
func WithPositiveTTL(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("WithPositiveTTL(%v): must not be negative", d)
			return
		}
		c.positiveTTL = d
	}
}

// WithLookupTimeout bounds one lookup in the next Store (default
// DefaultLookupTimeout). Concurrent misses on one id share a single lookup,
// so the lookup does not run under any one caller's context: a caller
// whose context ends stops waiting and gets the context's error at once,
// while the lookup goes on for the others, bounded by d. The lookup keeps
// the values of the context of the caller that started it. d must be
// positive, or New returns an error.
func WithLookupTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("WithLookupTimeout(%v): must be positive", d)
			return
		}
		c.lookupTimeout = d
	}
}

// WithoutWatch keeps the Store from watching the next Store even when it is
// a blocklist.WatchStore: answers are then kept as if it were not one, and
// New starts no goroutine.
func WithoutWatch() Option {
	return func(c *config) { c.noWatch = true }
}

// WithWatchNegativeTTL sets how long a "not revoked" answer is reused while
// the watch is live (default DefaultWatchNegativeTTL, one minute). An
// announced revocation reaches the watch sooner, so this bound only matters
// for revocations written without their announcement (see "How stale an
// answer can be" in the package documentation). It has no effect without a
// watch. A negative d makes
// New return an error; zero turns negative caching off while the watch is
// live.
func WithWatchNegativeTTL(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("WithWatchNegativeTTL(%v): must not be negative", d)
			return
		}
		c.watchNegativeTTL = d
	}
}

// WithReplica makes the Store hold every live revocation of the next
// Store in memory, so that every check, even of a token never seen before,
// is answered without leaving the process while the watch is live. The
// next Store must be a blocklist.WatchStore and a blocklist.ScanStore
// (redisstore is both), or New returns an error; WithoutWatch and
// WithReplica together are an error too. See the package documentation,
// "Replica mode", for what it costs.
func WithReplica() Option {
	return func(c *config) { c.replica = true }
}

// WithStaleIfError lets the Store answer from memory when the next Store
// fails, for at most d after its watch was last known complete (the term
// and the idea are RFC 5861's stale-if-error). Default off (0): every
// check that needs the next Store fails closed while it cannot answer. A
// negative d makes New return an error; without a watch it has no effect.
//
// It applies only while the watch is lost (Stats.Watch is WatchLost) after
// having been live: the lost watch is the next Store's failure, and checks
// are then answered from what this Store held when the watch was lost,
// without asking the next Store: in replica mode from the whole replica;
// otherwise from the cached answer for the id. An id with no such answer
// asks the next Store, bounded by LostLookupTimeout, and fails closed if it
// cannot answer; a check whose lookup began while the watch was live and
// was abandoned when it was lost is answered stale too. Once d has passed
// since the watch was lost, checks fail closed again; once the watch is
// back, every answer is fresh. Stats.StaleSince and Stats.StaleAnswers
// show when answers are stale and how many were given.
//
// The risk, exactly: a token revoked during the window may be answered
// "not revoked" for up to d. That covers the revocations Redis acknowledged
// but had not delivered to this Store when the failure began (over
// redisstore the watch reports a silent server within
// redisstore.WatchSilenceBound, so also those made that long before it was
// reported), and, when only this instance is cut off (a network partition,
// while other instances still reach Redis and revoke), every revocation
// made anywhere during the window. That is why it is off by default:
// choose it only when a Redis outage must not be an API outage and d is a
// staleness the service accepts.
func WithStaleIfError(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("WithStaleIfError(%v): must not be negative", d)
			return
		}
		c.staleIfError = d
	}
}
