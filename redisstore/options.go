package redisstore

import "fmt"

// DefaultPrefix is the key prefix used unless [WithPrefix] sets another.
const DefaultPrefix = "blocklist:"

// DefaultStreamMaxLen is how many announcements the stream keeps at least
// when WithStreamMaxLen is not given: a watcher cut off for fewer new
// revocations than this catches up without a gap.
const DefaultStreamMaxLen = 100_000

// Option configures a Store built by [New].
type Option func(*config)

type config struct {
	prefix       string
	noEvents     bool
	streamMax    int64
	waitReplicas int
	waitMS       int64
	err          error // the first invalid option
}

// WithPrefix sets the prefix of every key the Store reads and writes: the
// revocation of jti is the key p+jti, nothing added or escaped. The default
// is [DefaultPrefix], "blocklist:". An empty prefix puts the raw ids at the
// top of the keyspace; it needs WithoutEvents, since the announcements'
// stream is the key named by the prefix (New panics otherwise).
//
// Use distinct prefixes to keep separate blocklists (per service, per
// tenant, per test) in one Redis, none of them a prefix of another (see
// Prefixes in the package documentation). On Redis Cluster keep "{" and "}" out of
// the prefix: a hash tag there would send every revocation to one slot;
// and with announcements on, New refuses on Cluster a prefix starting with
// "{", whose key space would hold the masters' streams.
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// WithoutEvents turns announcements off: Revoke writes only the token's
// key, and Watch returns an error wrapping errors.ErrUnsupported. Use it when no process watches, to save the XADD.
func WithoutEvents() Option {
	return func(c *config) { c.noEvents = true }
}

// WithStreamMaxLen sets how many announcements the stream keeps at least
// (default DefaultStreamMaxLen); Redis trims older ones (MAXLEN ~ n, so it
// may keep a little more). On Cluster each master's stream keeps n, and
// what follows counts the revocations of that master's keys. A watcher that falls further behind than n
// revocations, or is cut off while n revocations are made, cannot resume
// without a gap and reports Synced instead of Resumed (package cached then
// distrusts its "not revoked" answers, or reloads its replica). Redis's
// memory for the stream grows linearly with n. n below 1 is a programming
// error: New panics.
func WithStreamMaxLen(n int64) Option {
	return func(c *config) {
		if n < 1 {
			c.err = fmt.Errorf("redisstore: WithStreamMaxLen(%d): want at least 1", n)
			return
		}
		c.streamMax = n
	}
}
