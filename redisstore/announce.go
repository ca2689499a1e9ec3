package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// announceCmd returns the XADD that announces, on stream, that jti is
// revoked until ms.
func (s *Store) announceCmd(ctx context.Context, stream, jti string, ms int64) *redis.StringCmd {
	return redis.NewStringCmd(ctx, "xadd", stream, "maxlen", "~", s.streamMax, "*", "jti", jti, "exp", ms)
}

// announce sends the announcement on the Store's one stream on its own
// (on a Ring, whose stream is on one shard, usually not the key's), and
// wraps its failure with announceErr.
func (s *Store) announce(ctx context.Context, jti string, ms int64) error {
	if err := s.write(ctx, s.stream, s.announceCmd(ctx, s.stream, jti, ms)); err != nil {
		return s.announceErr(s.stream, err)
	}
	return nil
}

// announceAsync is announce at once, beside the caller's own command,
// reporting its outcome on the returned channel.
func (s *Store) announceAsync(ctx context.Context, jti string, ms int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- s.announce(ctx, jti, ms)
	}()
	return done
}
