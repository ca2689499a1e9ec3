package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memcachestore"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// boltLockWait is how long a bolt file's lock is waited for: a server that
// holds it will not let go, so waiting long is pointless.
const boltLockWait = time.Second

// storeTarget runs the commands on a Store of this module.
type storeTarget struct {
	store  blocklist.ExpiryStore
	scheme string // "redis", "memcached", "bolt"
	where  string // for messages
	close  func() error
	// doctor checks what only this backend can; nil for none.
	doctor func(ctx context.Context, report func(finding))
	// redis is the client, for doctor and CheckServer.
	redis redis.UniversalClient
}

// storeURL is a parsed -store value.
type storeURL struct {
	scheme string // "redis", "memcached", "bolt"
	path   string // bolt
	addrs  []string
}

// openStore opens the Store o.store names. It does not contact networked
// servers; the command's first call does (and doctor checks).
func openStore(_ context.Context, o options) (target, error) {
	raw := o.store
	switch {
	case strings.HasPrefix(raw, "redis://"), strings.HasPrefix(raw, "rediss://"):
		return openRedis(o)
	case strings.HasPrefix(raw, "memcached://"):
		return openMemcached(o)
	case strings.HasPrefix(raw, "bolt:"):
		return openBolt(strings.TrimPrefix(raw, "bolt:"))
	case strings.HasSuffix(raw, ".db") && !strings.Contains(raw, "://"):
		return openBolt(raw)
	}
	return nil, usagef("-store %q: want redis://, rediss://, memcached://host:port, bolt:PATH or a PATH ending in .db", raw)
}

func openRedis(o options) (target, error) {
	u, err := url.Parse(o.store)
	if err != nil {
		return nil, usagef("-store: %v", err)
	}
	var client redis.UniversalClient
	var where string
	if o.cluster || u.Query().Has("addr") {
		opts, err := redis.ParseClusterURL(o.store)
		if err != nil {
			return nil, usagef("-store: %v", err)
		}
		opts.ContextTimeoutEnabled = true
		client = redis.NewClusterClient(opts)
		where = "Redis Cluster " + strings.Join(opts.Addrs, ",")
	} else {
		opts, err := redis.ParseURL(o.store)
		if err != nil {
			return nil, usagef("-store: %v", err)
		}
		opts.ContextTimeoutEnabled = true
		client = redis.NewClient(opts)
		where = "Redis " + opts.Addr
	}
	s, err := newRedisStore(client, o.keyPrefix)
	if err != nil {
		client.Close()
		return nil, err
	}
	t := &storeTarget{store: s, scheme: "redis", where: where, close: client.Close, redis: client}
	t.doctor = func(ctx context.Context, report func(finding)) { doctorRedis(ctx, client, s, o.keyPrefix, report) }
	return t, nil
}

// newRedisStore is redisstore.New with its panic on a prefix it refuses
// (empty, or starting with "{" on Cluster), a flag's value here, turned
// into a usage error.
func newRedisStore(client redis.UniversalClient, prefix string) (s *redisstore.Store, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, usagef("-key-prefix: %v", p)
		}
	}()
	return redisstore.New(client, redisstore.WithPrefix(prefix)), nil
}

// newMemcacheStore is memcachestore.New with its panic on an invalid
// prefix, a flag's value here, turned into a usage error.
func newMemcacheStore(client *memcache.Client, prefix string) (s *memcachestore.Store, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, usagef("-key-prefix: %v", p)
		}
	}()
	return memcachestore.New(client, memcachestore.WithPrefix(prefix)), nil
}

func openMemcached(o options) (target, error) {
	rest := strings.TrimPrefix(o.store, "memcached://")
	var addrs []string
	for _, a := range strings.Split(rest, ",") {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, usagef("-store %q: want memcached://host:port[,host:port]: %v", o.store, err)
		}
		addrs = append(addrs, a)
	}
	client := memcache.New(addrs...)
	store, err := newMemcacheStore(client, o.keyPrefix)
	if err != nil {
		return nil, err
	}
	t := &storeTarget{
		store:  store,
		scheme: "memcached", where: "memcached " + rest, close: client.Close,
	}
	t.doctor = func(ctx context.Context, report func(finding)) {
		for _, a := range addrs {
			err := memcache.New(a).Ping()
			report(finding{Check: "reachable " + a, OK: err == nil, Detail: errText(err, "answers")})
		}
	}
	return t, nil
}

func openBolt(path string) (target, error) {
	if path == "" {
		return nil, usagef("-store bolt: empty path")
	}
	if _, err := os.Stat(path); err != nil {
		// Opening would create it: an operator's typo must not make an
		// empty blocklist that no server reads.
		return nil, unavailable(fmt.Errorf("bolt file %s: %w", path, err))
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: boltLockWait})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, unavailable(fmt.Errorf("bolt file %s is locked by another process (a running server?): use -admin with its admin handler", path))
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("bolt file %s: %w", path, err))
	}
	s, err := boltstore.New(db)
	if err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	t := &storeTarget{store: s, scheme: "bolt", where: path, close: func() error { return errors.Join(s.Close(), db.Close()) }}
	t.doctor = func(_ context.Context, report func(finding)) {
		var problems []string
		err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				problems = append(problems, err.Error())
			}
			return nil
		})
		switch {
		case err != nil:
			report(finding{Check: "consistency", OK: false, Detail: oneLine(err)})
		case len(problems) > 0:
			report(finding{Check: "consistency", OK: false, Detail: fmt.Sprintf("%d problem(s): %s", len(problems), strings.Join(problems, "; "))})
		default:
			report(finding{Check: "consistency", OK: true, Detail: "bbolt's page check found nothing wrong in " + path})
		}
	}
	return t, nil
}

func errText(err error, ok string) string {
	if err != nil {
		return oneLine(err)
	}
	return ok
}

func (t *storeTarget) Close() error { return t.close() }

func (t *storeTarget) Revoke(ctx context.Context, jti string, exp time.Time) (time.Time, error) {
	if err := t.store.Revoke(ctx, jti, exp); err != nil {
		return time.Time{}, unavailable(err)
	}
	// Revocation is monotonic: say when it really ends.
	until, err := t.store.RevokedUntil(ctx, jti)
	return until, unavailable(err)
}

func (t *storeTarget) RevokeToken(ctx context.Context, raw string) (revocation, error) {
	tok, err := jwtguard.ParseUnverified(raw)
	if err != nil {
		return revocation{}, usagef("revoke -token: %v", err)
	}
	r := revocation{JTI: tok.ID}
	r.Session, _ = tok.Claims[jwtguard.ClaimSessionID].(string)
	// What (*jwtguard.Guard).Revoke writes for a token without sid.
	exp := tok.ExpiresAt.Add(jwtguard.MaxLeeway)
	if !exp.After(time.Now()) {
		r.Expired = true
		return r, nil
	}
	r.Until, err = t.Revoke(ctx, tok.ID, exp)
	return r, err
}

func (t *storeTarget) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	until, err := t.store.RevokedUntil(ctx, jti)
	return until, unavailable(err)
}

func (t *storeTarget) List(ctx context.Context, prefix string, fn func(string, time.Time) error) error {
	scan, ok := t.store.(blocklist.ScanStore)
	if !ok {
		return usagef("the %s store cannot list its revocations (it is not a blocklist.ScanStore)", t.scheme)
	}
	// A scan may report an id more than once: show each once.
	seen := map[string]bool{}
	err := scan.ScanRevoked(ctx, func(jti string, until time.Time) error {
		if !strings.HasPrefix(jti, prefix) || seen[jti] {
			return nil
		}
		seen[jti] = true
		return fn(jti, until)
	})
	if err != nil && !errors.Is(err, errStop) {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return unavailable(err)
	}
	return err
}

// sessionGuard is a Guard with default session settings, used only to
// write what RevokeSession and LogoutAll write (the session layout does not
// depend on a Guard's settings); its key function is never called.
func (t *storeTarget) sessionGuard() (*jwtguard.Guard, error) {
	g, err := jwtguard.New(t.store,
		func(*jwt.Token) (any, error) { return nil, errors.New("blocklist: tokens are not verified here") },
		jwtguard.WithAlgorithms("HS256"),
		jwtguard.WithSessions(jwtguard.Sessions{}),
		jwtguard.WithLogger(slog.New(slog.DiscardHandler))) // the command reports errors itself, once
	if err != nil {
		return nil, usageError{err}
	}
	return g, nil
}

func (t *storeTarget) RevokeSession(ctx context.Context, sid string) error {
	g, err := t.sessionGuard()
	if err != nil {
		return err
	}
	return unavailable(g.RevokeSession(ctx, sid))
}

func (t *storeTarget) LogoutAll(ctx context.Context, sub string) error {
	g, err := t.sessionGuard()
	if err != nil {
		return err
	}
	return unavailable(g.LogoutAll(ctx, sub))
}

func (t *storeTarget) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	w, ok := t.store.(blocklist.WatchStore)
	if !ok {
		return usagef("the %s store does not announce revocations (it is not a blocklist.WatchStore)", t.scheme)
	}
	return w.Watch(ctx, fn)
}

func (t *storeTarget) Doctor(ctx context.Context, report func(finding)) error {
	t.doctor(ctx, report)
	// What every store must do: answer a lookup.
	_, err := t.store.RevokedUntil(ctx, "blocklist-doctor-probe")
	report(finding{Check: "lookup", OK: err == nil, Detail: errText(err, t.where+" answers a lookup")})
	return nil
}

// doctorRedis checks the Redis behind s, and the length of each stream it
// announces on (the prefix itself, or one per master on Cluster:
// redisstore's public layout).
func doctorRedis(ctx context.Context, client redis.UniversalClient, s *redisstore.Store, prefix string, report func(finding)) {
	err := client.Ping(ctx).Err()
	report(finding{Check: "reachable", OK: err == nil, Detail: errText(err, "PING answered")})
	if err != nil {
		return
	}
	doctorRedisServer(ctx, client, s, report)
	if prefix == "" {
		return
	}
	streams, err := s.Streams(ctx)
	if err != nil {
		report(finding{Check: "announcements", OK: false, Detail: errText(err, "")})
		return
	}
	for _, stream := range streams {
		n, err := client.XLen(ctx, stream).Result()
		report(finding{Check: "announcements", OK: err == nil, Detail: errText(err, fmt.Sprintf("stream %q holds %d announcements", stream, n))})
	}
}

func (t *storeTarget) Stats(ctx context.Context) (stats, error) {
	st := stats{ByKind: map[string]int{}}
	for _, k := range []string{jwtguard.KindToken, jwtguard.KindSignature, jwtguard.KindSession, jwtguard.KindSubject, jwtguard.KindExchange} {
		st.ByKind[k] = 0
	}
	err := t.List(ctx, "", func(jti string, _ time.Time) error {
		st.Revocations++
		st.ByKind[jwtguard.IDKind(jti)]++
		return nil
	})
	return st, err
}
