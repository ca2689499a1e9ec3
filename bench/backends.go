package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/baseline"
	"github.com/jwtblocklist/blocklist/internal/measure"
	"github.com/jwtblocklist/blocklist/memcachestore"
	"github.com/jwtblocklist/blocklist/memorystore"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// A pair is one row of the comparison and the row beneath it: a Store, and
// the raw client calls it is built on, reaching the same server or file.
type pair struct {
	name    string // the Store, as the table names it
	rawName string // the raw calls, as the table names them
	rawLib  string // the raw client, as the chart names it
	store   blocklist.Store
	raw     blocklist.Store // a measure.Baseline
	close   func() error    // releases what the pair owns (not shared clients)

	// A second baseline, measured after the pair when set: the cached
	// rows' bare LRU.
	bareName string
	bare     blocklist.Store
}

func nop() error { return nil }

// memoryPair is memorystore beside the map and lock it is built on.
func memoryPair() pair {
	s := memorystore.New()
	return pair{name: "memorystore", rawName: "map + RWMutex", rawLib: "map + RWMutex", store: s, raw: baseline.Memory(), close: s.Close}
}

// boltPair is boltstore beside bbolt's own View+Get and Batch+Put, in one
// new file in dir. It returns the db too, so a caller can tune it.
func boltPair(dir string) (pair, *bolt.DB, error) {
	db, err := bolt.Open(filepath.Join(dir, "bench.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return pair{}, nil, fmt.Errorf("bbolt: %w", err)
	}
	s, err := boltstore.New(db)
	var raw measure.Baseline
	if err == nil {
		raw, err = baseline.Bolt(db)
	}
	if err != nil {
		return pair{}, nil, errors.Join(err, db.Close())
	}
	closeAll := func() error { return errors.Join(s.Close(), db.Close()) }
	return pair{name: "boltstore", rawName: "bbolt View+Get, Batch+Put", rawLib: "bbolt", store: s, raw: raw, close: closeAll}, db, nil
}

// redisPair is redisstore beside go-redis EXISTS and SET PXAT on the same
// client; prefix keeps both apart from every other key.
func redisPair(name string, client redis.UniversalClient, prefix string) pair {
	s := redisstore.New(client, redisstore.WithPrefix(prefix))
	raw := baseline.Redis(client, prefix)
	return pair{name: name, rawName: "go-redis EXISTS, SET PXAT", rawLib: "go-redis", store: s, raw: raw, close: nop}
}

// memcachePair is memcachestore beside gomemcache Get and Set on the same
// client. The benchmark's ids need no escaping, so the raw key is
// prefix+id.
func memcachePair(client *memcache.Client, prefix string) pair {
	s := memcachestore.New(client, memcachestore.WithPrefix(prefix))
	raw := baseline.Memcache(client, prefix)
	return pair{name: "memcachestore", rawName: "gomemcache Get, Set", rawLib: "gomemcache", store: s, raw: raw, close: nop}
}

// cachedPair puts cached, with its defaults, in front of p's Store, and
// golang-lru caches of the same size in front of p's raw calls: the cache a
// user would write by hand. The first baseline keeps each answer with the
// same end cached gives it (a "not revoked" answer for negativeTTL, what
// cached uses in front of that Store; a revocation until its exp, or for
// cached.DefaultPositiveTTL when it was read rather than made) and checks
// it on every hit; the second, the bare Get, keeps answers for ever, which
// breaks the contract (a revocation made elsewhere is never seen).
func cachedPair(p pair, negativeTTL time.Duration) (pair, error) {
	s, err := cached.New(p.store)
	if err != nil {
		return pair{}, err
	}
	type answer struct {
		revoked bool
		until   time.Time
	}
	withExpiry, err := lru.New[string, answer](cached.DefaultSize)
	if err != nil {
		return pair{}, err
	}
	bare, err := lru.New[string, bool](cached.DefaultSize)
	if err != nil {
		return pair{}, err
	}
	next := p.raw
	raw := measure.Baseline{
		RevokeFunc: func(ctx context.Context, jti string, exp time.Time) error {
			if err := next.Revoke(ctx, jti, exp); err != nil {
				return err
			}
			withExpiry.Add(jti, answer{true, exp})
			return nil
		},
		IsRevokedFunc: func(ctx context.Context, jti string) (bool, error) {
			now := time.Now()
			if a, ok := withExpiry.Get(jti); ok && now.Before(a.until) {
				return a.revoked, nil
			}
			v, err := next.IsRevoked(ctx, jti)
			if err != nil {
				return false, err
			}
			ttl := negativeTTL
			if v {
				ttl = cached.DefaultPositiveTTL
			}
			withExpiry.Add(jti, answer{v, now.Add(ttl)})
			return v, nil
		},
	}
	bareRaw := measure.Baseline{
		RevokeFunc: func(ctx context.Context, jti string, exp time.Time) error {
			if err := next.Revoke(ctx, jti, exp); err != nil {
				return err
			}
			bare.Add(jti, true)
			return nil
		},
		IsRevokedFunc: func(ctx context.Context, jti string) (bool, error) {
			if v, ok := bare.Get(jti); ok {
				return v, nil
			}
			v, err := next.IsRevoked(ctx, jti)
			if err != nil {
				return false, err
			}
			bare.Add(jti, v)
			return v, nil
		},
	}
	return pair{
		name:     "cached → " + p.name,
		rawName:  "golang-lru Get + expiry → " + p.rawName,
		rawLib:   "golang-lru + expiry → " + p.rawLib,
		store:    s,
		raw:      raw,
		bareName: "golang-lru Get, bare (never expires) → " + p.rawName,
		bare:     bareRaw,
		close:    p.close,
	}, nil
}

// newRedisClient returns a go-redis client for addr, configured as
// redisstore's documentation asks.
func newRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
}

// newClusterClient returns a go-redis Cluster client for addrs.
func newClusterClient(addrs []string) *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
}

// newMemcacheClient returns a gomemcache client for addr that keeps enough
// idle connections for the parallel phase: with gomemcache's default of 2,
// every operation beyond two at once would dial a new connection.
func newMemcacheClient(addr string, parallelism int) *memcache.Client {
	c := memcache.New(addr)
	c.MaxIdleConns = max(8, 2*parallelism)
	return c
}
