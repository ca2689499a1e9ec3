package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
)

var _ blocklist.OnceStore = (*Store)(nil)

// revokeOnceScript is RevokeOnce on a single server: the SET NX and, only
// when it won, the announcement, in one round trip and atomically.
var revokeOnceScript = redis.NewScript(revokeOnceSource)

const revokeOnceSource = `
if redis.call('SET', KEYS[1], '1', 'PXAT', ARGV[1], 'NX') then
	redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'jti', ARGV[2], 'exp', ARGV[1])
	return 1
end
return 0`

// RevokeOnce implements blocklist.OnceStore with one SET key 1 PXAT exp NX:
// Redis creates the key only if it does not exist, atomically, so of any
// number of callers in any number of processes exactly one gets OK. A key
// exists exactly while its revocation lasts, so "exists" is "revoked now".
// exp is rounded up to the millisecond and saturated at the latest expiry
// Redis holds, as in Revoke.
//
// When it wins, it announces the revocation on the stream (see Watch): on
// a single server in the same round trip, with a script that runs the SET
// NX and the XADD together; on Cluster (the stream of the master owning
// the key, another slot of the same master) and on a Ring (the one stream,
// usually on another shard) with a second round trip paid by the winner
// only.
//
// On Cluster the command goes to the master owning the key. go-redis may
// retry it after a broken connection; if the first try was applied, the
// retry answers "already revoked", so a network failure can turn a win into
// a loss, never two wins. Under WithWait, an error wrapping
// ErrNotReplicated likewise means the key may be stored: a retry may answer
// false.
func (s *Store) RevokeOnce(ctx context.Context, jti string, exp time.Time) (bool, error) {
	if err := s.check(ctx, "revoke once", jti); err != nil {
		return false, err
	}
	if !exp.After(time.Now()) {
		return false, nil
	}
	ms := expiry.CeilMillis(exp)
	if s.stream != "" && s.oneNode {
		// The SET NX and, only when it won, the announcement, atomically
		// in one round trip.
		won, err := s.revokeOnceScript(ctx, jti, ms)
		if err != nil {
			if redis.HasErrorPrefix(err, "WRONGTYPE") {
				err = s.announceErr(s.stream, err) // only the XADD can answer it
			}
			return false, fmt.Errorf("redisstore: revoke once: %w", err)
		}
		return won == 1, nil
	}
	cmd := redis.NewStatusCmd(ctx, "set", s.key(jti), "1", "pxat", ms, "nx")
	switch err := s.write(ctx, s.key(jti), cmd); {
	case err == nil:
		// The winner announces in a second round trip: on Cluster on the
		// stream of the master owning the key, on the same master; on a
		// Ring on the one stream, usually on another shard. If that fails,
		// the revocation stands but watchers were not told: report the
		// error, and the caller must not act as the winner.
		switch {
		case s.streams != nil:
			err = s.writeOn(ctx, pipeWrite{key: s.key(jti), jti: jti, ms: ms})
			s.noteFailure(err)
		case s.stream != "":
			err = s.announce(ctx, jti, ms)
		}
		if err != nil {
			return false, fmt.Errorf("redisstore: revoke once: %w", err)
		}
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	default:
		return false, fmt.Errorf("redisstore: revoke once: %w", err)
	}
}

// revokeOnceScript runs revokeOnceSource on a single server, followed by
// WAIT on the same connection under WithWait, and returns its answer: 1
// when this call created the key.
func (s *Store) revokeOnceScript(ctx context.Context, jti string, ms int64) (int64, error) {
	key := s.key(jti)
	if s.waitReplicas == 0 {
		return revokeOnceScript.Run(ctx, s.client, []string{key, s.stream}, ms, jti, s.streamMax).Int64()
	}
	// EVALSHA, and EVAL when the server does not hold the script yet, as
	// Script.Run does, but each followed by WAIT on its connection.
	cmd := redis.NewCmd(ctx, "evalsha", revokeOnceScript.Hash(), 2, key, s.stream, ms, jti, s.streamMax)
	err := s.write(ctx, key, cmd)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd = redis.NewCmd(ctx, "eval", revokeOnceSource, 2, key, s.stream, ms, jti, s.streamMax)
		err = s.write(ctx, key, cmd)
	}
	if err != nil {
		// Under ErrNotReplicated the key may be stored, but a failover
		// may yet lose it: not a win the caller may act on.
		return 0, err
	}
	return cmd.Int64()
}
