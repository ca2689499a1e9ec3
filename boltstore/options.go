package boltstore

import (
	"fmt"
	"time"
)

// indexSuffix is appended to the bucket name to name the expiry index.
const indexSuffix = ".expiry"

// Defaults used when the matching option is not given.
const (
	// DefaultBucket is the name of the bucket holding token ids. The expiry
	// index lives in a second bucket, "blocklist.expiry".
	DefaultBucket = "blocklist"

	// DefaultTimeout is how long Open waits for the file lock held by
	// another process before it gives up.
	DefaultTimeout = time.Second

	// DefaultSweepInterval is how often the background sweeper removes
	// expired entries from the file.
	DefaultSweepInterval = time.Minute
)

// Option configures Open and New.
type Option func(*config)

type config struct {
	bucket     string
	timeout    time.Duration
	sweepEvery time.Duration
	err        error // the first invalid option, returned by Open and New
}

// invalid records the first invalid option.
func (c *config) invalid(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("boltstore: "+format, args...)
	}
}

// WithBucket sets the name of the bucket that holds token ids; the expiry
// index is kept in the bucket named name + ".expiry". Both are created
// when missing. Use it with New to keep the blocklist beside an
// application's own buckets, or to keep several blocklists in one file. The
// default is DefaultBucket. An empty name is an error from Open and New.
func WithBucket(name string) Option {
	return func(c *config) {
		if name == "" {
			c.invalid("WithBucket(\"\"): empty bucket name")
		}
		c.bucket = name
	}
}

// WithTimeout sets how long Open waits for the file lock when another
// process (or another Store in this one) has the file open, before it
// returns an error. The default is DefaultTimeout; zero waits as long as it
// takes, as bbolt's own Options.Timeout does. A negative d is an error from
// Open and New. New ignores the value: the caller opened the database.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.invalid("WithTimeout(%s): negative duration", d)
		}
		c.timeout = d
	}
}

// WithSweepInterval sets how often a background goroutine removes expired
// entries from the file (default DefaultSweepInterval). Zero starts no
// goroutine: each Revoke and RevokeOnce then also removes up to two expired
// entries in its own transaction, which keeps the file bounded as long as
// revocations keep coming. A negative d is an error from Open and New.
// Expired entries never answer "revoked", whenever they are removed. The
// option means the same in memorystore.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.invalid("WithSweepInterval(%s): negative interval", d)
		}
		c.sweepEvery = d
	}
}

func newConfig(opts []Option) config {
	cfg := config{
		bucket:     DefaultBucket,
		timeout:    DefaultTimeout,
		sweepEvery: DefaultSweepInterval,
	}
	for _, opt := range opts {
		if opt != nil { // a nil option, say from a conditional list, is no option
			opt(&cfg)
		}
	}
	return cfg
}
