package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The problems CheckServer reports. Each error it returns wraps one of
// these (several, joined with errors.Join, when several problems are
// found), so that a caller can decide which to tolerate:
//
//	err := store.CheckServer(ctx)
//	switch {
//	case errors.Is(err, redisstore.ErrEviction), errors.Is(err, redisstore.ErrStreamTooShort):
//		// revocations can disappear while Redis runs: refuse to start
//	case errors.Is(err, redisstore.ErrNotDurable):
//		// the last revocations may be lost in a crash: log it, or refuse
//	}
var (
	// ErrEviction: the server's maxmemory-policy is not "noeviction", so
	// when memory runs out Redis deletes keys to make room, revocations
	// and the announcement stream among them (the volatile-* policies pick
	// revocations first: each is a key with an expiry), and a logged-out
	// token works again, silently. With noeviction a full Redis refuses the
	// write instead, and Revoke returns an error.
	ErrEviction = errors.New("redisstore: the server evicts keys under memory pressure (maxmemory-policy is not noeviction)")

	// ErrServerVersion: the server is older than Redis 7.0, which this
	// package needs (PEXPIREAT ... GT, PEXPIRETIME, XINFO STREAM's
	// entries-added): Revoke and RevokedUntil fail on it, and a watch
	// cannot tell what it missed.
	ErrServerVersion = errors.New("redisstore: the server is older than Redis 7.0")

	// ErrStreamTooShort: the announcement stream holds fewer entries than
	// the Store's WithStreamMaxLen although more were added: something
	// else trims it harder (another Store on the same prefix with a
	// smaller WithStreamMaxLen, an XTRIM, an XDEL), so a watcher that
	// falls behind by less than the history this Store promises can still
	// miss revocations and must start over.
	ErrStreamTooShort = errors.New("redisstore: the announcement stream is trimmed shorter than WithStreamMaxLen")

	// ErrNotDurable: the server's persistence can lose revocations it
	// acknowledged: no append-only file (a restart forgets everything
	// since the last RDB snapshot, or everything), an append-only file
	// without "appendfsync always" (a crash loses about the last second),
	// an append-only file whose last write failed, or a configuration
	// CheckServer cannot read (CONFIG GET refused). The revocations stay
	// while the server runs; it is a restart or crash that loses them.
	ErrNotDurable = errors.New("redisstore: the server's persistence may lose acknowledged revocations on a restart")

	// ErrPrefixOverlap: the Store's stream key (its prefix) holds a key of
	// another type, so its key space overlaps another's: typically another
	// Store whose prefix is a prefix of this one revoked the id that makes
	// up the rest (prefix "auth" revoking ":x" writes the key "auth:x", the
	// stream of the Store with prefix "auth:x"). Revocations of the two
	// stores can then be confused. Revoke and RevokeOnce return it when
	// their announcement finds such a key; CheckServer reports it too. See
	// the package documentation for the rule that avoids it.
	ErrPrefixOverlap = errors.New("redisstore: the key prefix overlaps another key space")
)

// minVersion is the oldest Redis this package works with.
var minVersion = [2]int{7, 0}

// CheckServer reads the configuration of the Redis behind the Store and
// returns nil when nothing in it can lose a revocation this Store
// acknowledged: maxmemory-policy noeviction, Redis 7.0 or later, an
// append-only file with "appendfsync always" whose last write succeeded,
// and an announcement stream (when announcements are on; on Cluster each
// master's, as CLUSTER SLOTS reads now) that is a stream holding at least
// WithStreamMaxLen entries or every entry ever added. Otherwise it returns
// an error wrapping [ErrEviction], [ErrServerVersion], [ErrStreamTooShort],
// [ErrPrefixOverlap] or [ErrNotDurable] for each problem found, each naming the server and
// the setting; several problems are joined with errors.Join. On Cluster it
// checks every master and every replica its slot map lists
// (ClusterClient.ForEachShard: a replica promoted by a failover keeps its
// own settings), on a Ring every shard.
//
// It is meant for a service's start and its health checks, not for every
// request: it costs one INFO and one CONFIG GET per server, one TYPE and
// one XINFO STREAM per stream, and on Cluster one CLUSTER SLOTS. An error that wraps none of the sentinels (server unreachable,
// context done, an INFO reply it cannot read) means the check itself
// could not be made.
func (s *Store) CheckServer(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: check server: %w", err)
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	checkNode := func(ctx context.Context, c *redis.Client) error {
		problems, err := checkNode(ctx, c)
		if err != nil {
			return fmt.Errorf("redisstore: check server %s: %w", c.Options().Addr, err)
		}
		mu.Lock()
		errs = append(errs, problems...)
		mu.Unlock()
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.Client:
		err = checkNode(ctx, c)
	case *redis.ClusterClient:
		// Replicas too: a replica promoted by a failover runs with its own
		// maxmemory-policy and persistence.
		err = c.ForEachShard(ctx, checkNode)
	case *redis.Ring:
		err = c.ForEachShard(ctx, checkNode)
	default:
		return fmt.Errorf("redisstore: check server: a %T is not a *redis.Client, *redis.ClusterClient or *redis.Ring", s.client)
	}
	if err != nil {
		return err
	}
	streams := []string{s.stream}
	switch {
	case s.stream == "":
		streams = nil
	case s.streams != nil:
		// Each master's stream, as the slot map reads now.
		m, err := s.streams.read(ctx, time.Now())
		if err != nil {
			return fmt.Errorf("redisstore: check server: %w", err)
		}
		streams = m.keys
	}
	for _, stream := range streams {
		if problem, err := s.checkStream(ctx, stream); err != nil {
			return fmt.Errorf("redisstore: check server: stream %q: %w", stream, err)
		} else if problem != nil {
			errs = append(errs, problem)
		}
	}
	return errors.Join(errs...)
}

// Streams returns the keys of the streams the Store announces revocations
// on (see Announcements in the package documentation): the prefix on a
// single server or a Ring; on Redis Cluster one key per master, as CLUSTER
// SLOTS reads now (one round trip), sorted; none with WithoutEvents. It is
// meant for operators and tools (a length, a health check), not for every
// request.
func (s *Store) Streams(ctx context.Context) ([]string, error) {
	switch {
	case s == nil || s.client == nil:
		return nil, fmt.Errorf("%w (streams)", errNilClient)
	case s.stream == "":
		return nil, nil
	case s.streams == nil:
		return []string{s.stream}, nil
	}
	m, err := s.streams.read(ctx, time.Now())
	if err != nil {
		return nil, fmt.Errorf("redisstore: streams: %w", err)
	}
	return slices.Clone(m.keys), nil
}

// checkNode checks one server; problems are what it found, err a failure
// to look.
func checkNode(ctx context.Context, c *redis.Client) (problems []error, err error) {
	addr := c.Options().Addr
	// Plain INFO: its default sections hold everything read here, on every
	// version (INFO of several named sections needs Redis 7).
	text, err := c.Info(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	info := parseInfo(text)
	version, ok := info["redis_version"]
	if !ok {
		return nil, errors.New("INFO has no redis_version")
	}
	if !versionAtLeast(version, minVersion) {
		problems = append(problems, fmt.Errorf("%w: %s runs %s", ErrServerVersion, addr, version))
	}
	if policy := info["maxmemory_policy"]; policy != "noeviction" {
		problems = append(problems, fmt.Errorf("%w: %s has maxmemory-policy %s", ErrEviction, addr, policy))
	}
	switch {
	case info["aof_enabled"] != "1":
		problems = append(problems, fmt.Errorf("%w: %s has no append-only file (appendonly no)", ErrNotDurable, addr))
	case info["aof_last_write_status"] != "" && info["aof_last_write_status"] != "ok":
		problems = append(problems, fmt.Errorf("%w: %s failed its last append-only file write (aof_last_write_status:%s)",
			ErrNotDurable, addr, info["aof_last_write_status"]))
	default:
		fsync, err := c.ConfigGet(ctx, "appendfsync").Result()
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("%w: %s: cannot read appendfsync: %v", ErrNotDurable, addr, err))
		case fsync["appendfsync"] != "always":
			problems = append(problems, fmt.Errorf("%w: %s has appendfsync %s, not always", ErrNotDurable, addr, fsync["appendfsync"]))
		}
	}
	return problems, nil
}

// checkStream reports ErrPrefixOverlap when the stream key holds another
// type of key, and ErrStreamTooShort when the stream holds fewer than
// streamMax entries although more were added to it. A stream that does not
// exist yet is fine.
func (s *Store) checkStream(ctx context.Context, stream string) (problem, err error) {
	typ, err := s.client.Type(ctx, stream).Result()
	switch {
	case err != nil:
		return nil, err
	case typ == "none":
		return nil, nil
	case typ != "stream":
		return fmt.Errorf("%w: the stream key %q holds a %s", ErrPrefixOverlap, stream, typ), nil
	}
	info, err := s.client.XInfoStream(ctx, stream).Result()
	if err != nil {
		return nil, err // deleted since TYPE: the next check will tell
	}
	if info.EntriesAdded > info.Length && info.Length < s.streamMax {
		return fmt.Errorf("%w: stream %q holds %d entries of the %d added, fewer than WithStreamMaxLen %d",
			ErrStreamTooShort, stream, info.Length, info.EntriesAdded, s.streamMax), nil
	}
	return nil, nil
}

// announceErr wraps the error of an announcement on stream, saying so, and
// with ErrPrefixOverlap when the stream key holds a key of another type.
func (s *Store) announceErr(stream string, err error) error {
	if redis.HasErrorPrefix(err, "WRONGTYPE") {
		err = fmt.Errorf("%w: the stream key %q holds a key that is not a stream: %w", ErrPrefixOverlap, stream, err)
	}
	return fmt.Errorf("announcing on the stream: %w", err)
}

// parseInfo reads the "field:value" lines of an INFO reply.
func parseInfo(text string) map[string]string {
	m := make(map[string]string)
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, "#") {
			m[k] = v
		}
	}
	return m
}

// versionAtLeast reports whether the Redis version v ("7.0.15") is at
// least min (major, minor). A version it cannot read is not.
func versionAtLeast(v string, min [2]int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > min[0] || major == min[0] && minor >= min[1]
}
