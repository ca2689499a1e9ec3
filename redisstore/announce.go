package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// announceCmd returns the XADD that announces that jti is revoked until ms.
func (s *Store) announceCmd(ctx context.Context, jti string, ms int64) *redis.StringCmd {
	return redis.NewStringCmd(ctx, "xadd", s.stream, "maxlen", "~", s.streamMax, "*", "jti", jti, "exp", ms)
}

// announceAsync sends the announcement at once, beside the caller's own
// command, and reports its outcome on the returned channel.
func (s *Store) announceAsync(ctx context.Context, jti string, ms int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- s.write(ctx, s.stream, s.announceCmd(ctx, jti, ms))
	}()
	return done
}
