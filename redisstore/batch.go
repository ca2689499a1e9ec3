package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
)

var _ blocklist.BatchStore = (*Store)(nil)

// RevokedUntilEach implements blocklist.BatchStore with one pipeline of
// PEXPIRETIME, one per id: one round trip on a single server. On Cluster
// (and Ring) go-redis splits the pipeline by the node owning each key and
// sends the parts to their nodes at once, so the call takes about as long as
// the slowest node's round trip. Answers are read as in RevokedUntil.
func (s *Store) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if err := blocklist.ValidateBatch(ctx, jtis, until); err != nil {
		return fmt.Errorf("redisstore: revoked until each: %w", err)
	}
	if s == nil || s.client == nil {
		return fmt.Errorf("%w (revoked until each)", errNilClient)
	}
	if len(jtis) == 0 {
		return nil
	}
	// Raw IntCmds, as in RevokedUntil: PExpireTime's Duration overflows
	// after 2262.
	cmds := make([]*redis.IntCmd, len(jtis))
	pipe := s.client.Pipeline()
	for i, jti := range jtis {
		cmds[i] = redis.NewIntCmd(ctx, "pexpiretime", s.key(jti))
		_ = pipe.Process(ctx, cmds[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.noteFailure(err)
		return fmt.Errorf("redisstore: revoked until each: %w", err)
	}
	for i := range cmds {
		ms, err := cmds[i].Result()
		if err != nil {
			return fmt.Errorf("redisstore: revoked until each: %w", err)
		}
		t, err := revokedUntil(ms)
		if err != nil {
			return fmt.Errorf("redisstore: revoked until each: %w", err)
		}
		until[i] = t
	}
	return nil
}
