package main

import (
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// The benchmarks below run the workload of conformance.RunBenchmarks on every
// backend and on the raw client beneath it, as ordinary Go benchmarks:
//
//	go test -run '^$' -bench . ./bench
//	go test -run '^$' -bench 'Redisstore$/' -count 10 ./bench | benchstat -col /side -
//
// Each has two sub-benchmarks, side=store and side=raw, with the phases of
// conformance.RunBenchmarks beneath. Servers are started per benchmark function; a
// missing binary skips it.

// benchPair runs conformance.RunBenchmarks on the Store and on the raw calls of the pairs
// newPair makes, a fresh pair for every call.
func benchPair(b *testing.B, newPair func(b *testing.B) pair) {
	for _, side := range []string{"store", "raw"} {
		b.Run("side="+side, func(b *testing.B) {
			conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
				p := newPair(b)
				b.Cleanup(func() {
					if err := p.close(); err != nil {
						b.Error(err)
					}
				})
				if side == "raw" {
					return p.raw
				}
				return p.store
			})
		})
	}
}

// prefixes returns a func making a key prefix that no other call, and no
// other run, shares.
func prefixes(b *testing.B) func() string {
	run := rand.Text()[:8]
	var n atomic.Int64
	return func() string { return fmt.Sprintf("blocklist-bench:%s:%d:", run, n.Add(1)) }
}

func BenchmarkMemorystore(b *testing.B) {
	benchPair(b, func(*testing.B) pair { return memoryPair() })
}

func BenchmarkBoltstore(b *testing.B) {
	benchPair(b, func(b *testing.B) pair {
		p, _, err := boltPair(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		return p
	})
}

func BenchmarkRedisstore(b *testing.B) {
	client := newRedisClient(testserver.Redis(b).Addr())
	b.Cleanup(func() { client.Close() })
	prefix := prefixes(b)
	benchPair(b, func(*testing.B) pair { return redisPair("redisstore", client, prefix()) })
}

func BenchmarkRedisstoreCluster(b *testing.B) {
	client := newClusterClient(testserver.RedisCluster(b, 3).Addrs())
	b.Cleanup(func() { client.Close() })
	prefix := prefixes(b)
	benchPair(b, func(*testing.B) pair { return redisPair("redisstore (cluster)", client, prefix()) })
}

func BenchmarkMemcachestore(b *testing.B) {
	client := newMemcacheClient(testserver.Memcached(b, "-m", "256").Addr(), 4)
	prefix := prefixes(b)
	benchPair(b, func(*testing.B) pair { return memcachePair(client, prefix()) })
}

func BenchmarkCachedRedisstore(b *testing.B) {
	client := newRedisClient(testserver.Redis(b).Addr())
	b.Cleanup(func() { client.Close() })
	prefix := prefixes(b)
	benchPair(b, func(b *testing.B) pair {
		return mustCached(b, redisPair("redisstore", client, prefix()), cached.DefaultWatchNegativeTTL)
	})
}

func BenchmarkCachedRedisstoreCluster(b *testing.B) {
	client := newClusterClient(testserver.RedisCluster(b, 3).Addrs())
	b.Cleanup(func() { client.Close() })
	prefix := prefixes(b)
	benchPair(b, func(b *testing.B) pair {
		return mustCached(b, redisPair("redisstore (cluster)", client, prefix()), cached.DefaultWatchNegativeTTL)
	})
}

func BenchmarkCachedMemcachestore(b *testing.B) {
	client := newMemcacheClient(testserver.Memcached(b, "-m", "256").Addr(), 4)
	prefix := prefixes(b)
	benchPair(b, func(b *testing.B) pair {
		return mustCached(b, memcachePair(client, prefix()), cached.DefaultNegativeTTL)
	})
}

func mustCached(b *testing.B, p pair, negativeTTL time.Duration) pair {
	c, err := cachedPair(p, negativeTTL)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
