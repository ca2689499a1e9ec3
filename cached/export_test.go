package cached

// WithShards fixes the number of shards of the cache (a power of two), for
// benchmarks that compare shard counts.
func WithShards(n int) Option {
	return func(c *config) {
		if n < 1 || n&(n-1) != 0 {
			c.fail("WithShards(%d): want a power of two", n)
			return
		}
		c.shards = n
	}
}

// ShardCount exposes shardCount to tests.
var ShardCount = shardCount

// Shards reports the number of shards of s.
func (s *Store) Shards() int { return len(s.shards) }
