package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
)

var _ blocklist.ScanStore = (*Store)(nil)

// ScanRevoked implements blocklist.ScanStore with SCAN over the keys of the
// prefix (on every master of a Cluster, every shard of a Ring, at once),
// COUNT 1000, and one pipeline of PEXPIRETIME per batch of keys. It costs
// about one round trip per thousand keys of the prefix, and reads only
// them; with an empty prefix it would report every key of the database
// as a revocation, so give watched stores a prefix of their own. Keys that
// vanish during the scan are skipped; during resharding of a Cluster a key
// may be reported twice.
func (s *Store) ScanRevoked(ctx context.Context, fn func(jti string, until time.Time) error) error {
	if s == nil || s.client == nil {
		return fmt.Errorf("%w (scan revoked)", errNilClient)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: scan revoked: %w", err)
	}
	var mu sync.Mutex // fn is never called concurrently
	var fnErr error
	scan := func(ctx context.Context, c redis.Cmdable) error {
		match := globEscape(s.prefix) + "*"
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return fmt.Errorf("redisstore: scan revoked: %w", err)
			}
			if err := s.reportKeys(ctx, c, keys, &mu, &fnErr, fn); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	default:
		err = scan(ctx, s.client)
	}
	if fnErr != nil {
		return fnErr
	}
	return err
}

// reportKeys reads the expiry of keys in one pipeline and calls fn for
// each key that is a live revocation.
func (s *Store) reportKeys(ctx context.Context, c redis.Cmdable, keys []string,
	mu *sync.Mutex, fnErr *error, fn func(string, time.Time) error) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := c.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = redis.NewIntCmd(ctx, "pexpiretime", k)
		_ = pipe.Process(ctx, cmds[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: scan revoked: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if *fnErr != nil {
		return *fnErr
	}
	for i, k := range keys {
		jti := k[len(s.prefix):]
		if k == s.stream || blocklist.ValidateID(jti) != nil {
			continue
		}
		until, err := revokedUntil(cmds[i].Val())
		switch {
		case err != nil:
			return fmt.Errorf("redisstore: scan revoked: %w", err)
		case until.IsZero():
			continue // expired or deleted since SCAN saw it
		}
		if err := fn(jti, until); err != nil {
			*fnErr = err
			return err
		}
	}
	return nil
}

// globEscape escapes the characters SCAN's MATCH pattern gives a meaning.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
