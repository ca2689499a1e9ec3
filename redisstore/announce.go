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

// announceAsync sends the announcement on the Store's one stream at once,
// beside the caller's own command, and reports its outcome on the returned
// channel: on a Ring, whose stream is on one shard, usually not the
// key's.
func (s *Store) announceAsync(ctx context.Context, jti string, ms int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- s.write(ctx, s.stream, s.announceCmd(ctx, s.stream, jti, ms))
	}()
	return done
}
