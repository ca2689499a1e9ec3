package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
	"github.com/redis/go-redis/v9"
)

// forever is what RevokedUntil reports for a key that exists without an
// expiry: something other than this package wrote it, and IsRevoked answers
// true for it until it is deleted. It is the latest expiry Redis can hold,
// so no revocation this package writes reports a later end.
//
// Every expiry this package writes is expiry.CeilMillis(exp): exp in Unix
// milliseconds, rounded up so that the key never vanishes before the token
// is dead, and saturated at forever instead of wrapping around (to a past
// time, which would store an already expired key, or to a negative one,
// which Redis refuses). PEXPIREAT and SET ... PXAT take a signed 64-bit
// millisecond count and answer "invalid expire time" for anything larger
// or not positive (expireGenericCommand and getExpireMillisecondsOrReply in
// the Redis source).
var forever = expiry.MaxMilli

var errNilClient = errors.New("redisstore: New was given a nil client")

// Store is a blocklist.ExpiryStore backed by Redis. Create it with [New]; it
// is safe for concurrent use and needs no closing (close the client
// instead, when done with both). Its only state besides its configuration
// is, on Cluster, the timer of the slot map reloads that follow failures
// (see the package documentation), which stops by itself, and its reading
// of which master's stream each slot announces on.
type Store struct {
	client redis.UniversalClient
	prefix string
	// stream is the key of the stream every revocation is announced on;
	// "" when announcements are off. On Cluster, where each master has a
	// stream of its own (streams), it is the prefix, and only says that
	// announcements are on.
	stream string
	// streams maps slots to their master's stream on Cluster with
	// announcements on; nil otherwise.
	streams   *clusterStreams
	streamMax int64
	// oneNode is true when client is a single server (*redis.Client), so
	// the announcement can join the token key's MULTI/EXEC.
	oneNode bool
	// waitReplicas and waitMS are WithWait's arguments; 0 replicas when
	// writes do not wait.
	waitReplicas int
	waitMS       int64
	// reload drives the slot map reloads after failures on Cluster.
	reload *reloadState
}

var _ blocklist.ExpiryStore = (*Store)(nil)

// New returns a Store that keeps revocations in the Redis behind client: a
// *redis.Client, *redis.ClusterClient or *redis.Ring. The caller keeps
// ownership of client and closes it after the last use of the Store. Enable
// ContextTimeoutEnabled in the client's options so that context deadlines
// bound every call (see the package documentation). A nil client or an
// invalid option value is a programming error: New panics, with a message
// naming it, rather than return a Store whose every call fails. So is,
// with announcements on, an empty prefix (the stream is the key named by
// the prefix), and on a *redis.ClusterClient a prefix that starts with
// "{": each master's stream key is "{<n>}" + prefix, which would then also
// be the key of a revocation (see Prefixes in the package documentation).
func New(client redis.UniversalClient, opts ...Option) *Store {
	if client == nil {
		panic("redisstore: New: nil client")
	}
	cfg := config{prefix: DefaultPrefix, streamMax: DefaultStreamMaxLen}
	for _, opt := range opts {
		if opt != nil && cfg.err == nil {
			opt(&cfg)
		}
	}
	cluster, isCluster := client.(*redis.ClusterClient)
	if cfg.err == nil && !cfg.noEvents && cfg.prefix == "" {
		cfg.err = errors.New("redisstore: announcements need a prefix that is not empty: the stream is the key named by the prefix (on Cluster, \"{<n>}\" + prefix); set a prefix with WithPrefix, or WithoutEvents")
	}
	if cfg.err == nil && isCluster && !cfg.noEvents && cfg.prefix[0] == '{' {
		cfg.err = fmt.Errorf("redisstore: on Redis Cluster, announcements need a prefix that does not start with \"{\" (got %q): each master's stream is \"{<n>}\" + prefix, which would then also be a revocation's key; set another prefix with WithPrefix, or WithoutEvents", cfg.prefix)
	}
	if cfg.err == nil && cfg.waitReplicas > 0 && client != nil && !waitSupported(client) {
		cfg.err = fmt.Errorf("redisstore: WithWait needs a *redis.Client, *redis.ClusterClient or *redis.Ring, not a %T", client)
	}
	if cfg.err != nil {
		panic(cfg.err)
	}
	s := &Store{client: client, prefix: cfg.prefix, streamMax: cfg.streamMax,
		waitReplicas: cfg.waitReplicas, waitMS: cfg.waitMS, reload: new(reloadState)}
	if !cfg.noEvents {
		s.stream = cfg.prefix
		if isCluster {
			s.streams = newClusterStreams(cluster, cfg.prefix)
		}
	}
	_, s.oneNode = client.(*redis.Client)
	return s
}

// key returns the Redis key of jti: the prefix and the raw id, nothing
// escaped. Redis keys are binary-safe, so every id of 1 to MaxIDLen bytes is
// its own key. On Cluster, an id containing a hash tag ("{...}") has its slot
// chosen by the tag instead of the whole key; that is harmless because every
// command we send touches this one key only (no multi-key command could
// fail with CROSSSLOT), and ids sharing a tag merely share a slot.
func (s *Store) key(jti string) string { return s.prefix + jti }

// check runs the checks every method makes before any work: a valid id, a
// usable client and a context that is not done yet.
func (s *Store) check(ctx context.Context, op, jti string) error {
	if err := blocklist.ValidateID(jti); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if s == nil || s.client == nil {
		return fmt.Errorf("%w (%s)", errNilClient, op)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	return nil
}

// Revoke records that jti is revoked until exp: the key prefix+jti then
// expires at exp, rounded up to the next millisecond so that it never
// expires early, or at the latest expiry Redis holds (the year 292,278,994) when exp
// is later.
// If exp is not in the future, Revoke stores nothing and returns nil. Revoking again never shortens a revocation: the key expires
// at the latest exp it was given, even when callers in many processes revoke
// the same id at once. The write is one round trip to the master that owns
// the key.
//
// Revoke returns an error wrapping blocklist.ErrInvalidID for an empty or
// too long id, one wrapping ctx.Err() for a done context, and a
// "redisstore: revoke: ..." error when Redis did not acknowledge the write;
// the revocation may or may not be stored then. Revoke is idempotent, so
// retrying it (as go-redis itself does on a broken connection) is safe.
func (s *Store) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := s.check(ctx, "revoke", jti); err != nil {
		return err
	}
	if !exp.After(time.Now()) {
		return nil
	}
	ms := expiry.CeilMillis(exp)
	key := s.key(jti)

	// The write is a transaction of two single-key commands:
	//
	//	PEXPIREAT key ms GT    extends an existing revocation, never shortens it
	//	SET key 1 PXAT ms NX   creates the revocation when there is none
	//
	// PEXPIREAT ... GT only moves an expiry later; on a missing key it does
	// nothing, and a key without an expiry counts as an infinite one, so it
	// stays. Sent as a plain pipeline, another client could run between the
	// two commands: if a revocation with a shorter exp were created right
	// there, our SET NX would fail and our later exp be lost (and in the
	// other order, a key expiring in between would swallow our PEXPIREAT).
	// MULTI/EXEC runs the pair with nothing in between, in one round trip,
	// without a read-modify-write on our side. Both commands touch the same
	// key, so on Cluster the transaction goes to the one master owning its
	// slot. We chose this over a Lua script because it is plain commands any
	// client can repeat (see the package documentation), and it has no script
	// cache to miss after a restart or failover.
	//
	// The commands are built by hand: go-redis's SetArgs.ExpireAt sends whole
	// seconds (EXAT, truncated) when the sub-second part is under 1 ms, which
	// would expire the key early. The value is "1": the key's own expiry is
	// the revocation's end, and RevokedUntil reads it with PEXPIRETIME, so
	// the value needs to carry nothing and is never stale.
	//
	// The announcement (an XADD to the stream, see announce.go) is part of
	// the same round trip. On a single server it joins the transaction, so
	// the key and its announcement are written together or not at all. On
	// Cluster each master has a stream of its own (see slots.go): the XADD
	// follows the EXEC in the same pipeline, on the same connection to the
	// master owning the key, so no other master is on the write's path. On
	// a Ring the stream is one key, usually on another shard, and a
	// transaction cannot cross shards: the XADD is sent at the same moment
	// on its own, and Revoke waits for both.
	//
	// Under WithWait, WAIT follows the EXEC (and the XADD) on the same
	// connection, in the same round trip: see writeOn.
	extend := redis.NewIntCmd(ctx, "pexpireat", key, ms, "gt")
	create := redis.NewStatusCmd(ctx, "set", key, "1", "pxat", ms, "nx")
	if s.streams != nil {
		err := s.writeOn(ctx, pipeWrite{key: key, tx: true, cmds: []redis.Cmder{extend, create}, jti: jti, ms: ms})
		s.noteFailure(err)
		if err != nil {
			return fmt.Errorf("redisstore: revoke: %w", err)
		}
	} else if err := s.revokeTx(ctx, key, jti, ms, extend, create); err != nil {
		return err
	}
	if err := extend.Err(); err != nil {
		return fmt.Errorf("redisstore: revoke: pexpireat: %w", err)
	}
	// SET ... NX answers nil when the key already exists: not an error.
	if err := create.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: revoke: set: %w", err)
	}
	return nil
}

// revokeTx writes extend and create in one MULTI/EXEC, with the
// announcement on the Store's one stream: inside the transaction on a
// single server, beside it on a Ring.
func (s *Store) revokeTx(ctx context.Context, key, jti string, ms int64, extend, create redis.Cmder) error {
	tx := []redis.Cmder{extend, create}
	var announce *redis.StringCmd
	var announced <-chan error
	if s.stream != "" {
		if s.oneNode {
			announce = s.announceCmd(ctx, s.stream, jti, ms)
			tx = append(tx, announce)
		} else {
			announced = s.announceAsync(ctx, jti, ms)
		}
	}
	err := s.writeTx(ctx, key, tx...)
	if err != nil && !errors.Is(err, redis.Nil) {
		if announced != nil {
			<-announced
		}
		if redis.HasErrorPrefix(err, "WRONGTYPE") {
			// Only the XADD can answer it.
			return fmt.Errorf("redisstore: revoke: %w", s.announceErr(s.stream, err))
		}
		return fmt.Errorf("redisstore: revoke: %w", err)
	}
	if announce != nil {
		if err := announce.Err(); err != nil {
			return fmt.Errorf("redisstore: revoke: %w", s.announceErr(s.stream, err))
		}
	}
	if announced != nil {
		if err := <-announced; err != nil {
			return fmt.Errorf("redisstore: revoke: %w", err)
		}
	}
	return nil
}

// IsRevoked reports whether jti is revoked now, that is whether the key
// prefix+jti exists. Redis removes the key at its expiry, so the answer
// turns false when the token's exp passes, by the Redis server's clock. It
// is one EXISTS, one round trip.
//
// On any failure (server down, timeout, unexpected reply) IsRevoked returns
// a non-nil error, never (false, nil); ids and contexts are checked as in
// Revoke.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if err := s.check(ctx, "is revoked", jti); err != nil {
		return false, err
	}
	// A hand-built command rather than client.Exists: through the
	// UniversalClient interface, Exists's variadic key slice escapes to the
	// heap, one allocation more per call than the raw client pays.
	cmd := redis.NewIntCmd(ctx, "exists", s.key(jti))
	_ = s.client.Process(ctx, cmd)
	n, err := cmd.Result()
	if err != nil {
		s.noteFailure(err)
		return false, fmt.Errorf("redisstore: is revoked: %w", err)
	}
	switch n {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("redisstore: is revoked: EXISTS of one key answered %d", n)
}

// RevokedUntil reports when the revocation of jti ends: the latest exp it
// was revoked with, rounded up to the millisecond, read with one PEXPIRETIME
// (Redis 7.0 or later). It returns the zero Time when jti is not revoked
// now, and the latest expiry Redis holds (the year 292,278,994) for a key
// that exists without an expiry. Errors are as in IsRevoked.
func (s *Store) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if err := s.check(ctx, "revoked until", jti); err != nil {
		return time.Time{}, err
	}
	// A raw IntCmd rather than client.PExpireTime: that one converts the
	// answer to a time.Duration since 1970, which overflows after 2262.
	cmd := redis.NewIntCmd(ctx, "pexpiretime", s.key(jti))
	_ = s.client.Process(ctx, cmd)
	ms, err := cmd.Result()
	if err != nil {
		s.noteFailure(err)
		return time.Time{}, fmt.Errorf("redisstore: revoked until: %w", err)
	}
	until, err := revokedUntil(ms)
	if err != nil {
		return time.Time{}, fmt.Errorf("redisstore: revoked until: %w", err)
	}
	return until, nil
}

// revokedUntil decodes PEXPIRETIME's answer for a revocation's key: the
// zero Time for -2 (no such key: not revoked now), forever for -1 (a key
// without an expiry), the expiry for a Unix millisecond count, and an
// error for any other negative answer.
func revokedUntil(ms int64) (time.Time, error) {
	switch {
	case ms == -2:
		return time.Time{}, nil
	case ms == -1:
		return forever, nil
	case ms < 0:
		return time.Time{}, fmt.Errorf("PEXPIRETIME answered %d", ms)
	}
	return time.UnixMilli(ms), nil
}
