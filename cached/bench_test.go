package cached_test

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/memorystore"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// hotIDs are the tokens the hit benchmarks check: UUID-sized, a power of
// two of them so the index is a mask.
func hotIDs() []string {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	return ids
}

// rawEntry is what a hand-written cache would store: the answer and when
// it stops holding.
type rawEntry struct {
	until   int64
	revoked bool
}

// BenchmarkIsRevokedHit measures a check answered from memory, beside the
// raw baseline in the same run: golang-lru's Get followed by the same
// expiry comparison against the clock. The ratio of the two is the cost of
// everything cached adds (context and id checks, counters).
//
// lru-raw-8shards is the same baseline over 8 golang-lru caches chosen by
// a hash of the id, each with its own lock: the sharding this package
// tried and left out. golang-lru's one lock keeps parallel hits from
// scaling, but shards were slower still (on 2 cores, 199 ns/op in parallel
// against 115 for one lock): an LRU hit writes (it moves the entry to the
// front), so cache lines travel between cores whichever lock guards them,
// and every check pays for a hash.
func BenchmarkIsRevokedHit(b *testing.B) {
	ids := hotIDs()
	mask := len(ids) - 1
	ctx := context.Background()

	c, err := cached.New(newMemory(b), cached.WithNegativeTTL(time.Hour), cached.WithoutWatch())
	if err != nil {
		b.Fatal(err)
	}
	raw, err := lru.New[string, rawEntry](cached.DefaultSize)
	if err != nil {
		b.Fatal(err)
	}
	var sharded [8]*lru.Cache[string, rawEntry]
	for i := range sharded {
		if sharded[i], err = lru.New[string, rawEntry](cached.DefaultSize / len(sharded)); err != nil {
			b.Fatal(err)
		}
	}
	seed := maphash.MakeSeed()
	shardOf := func(id string) *lru.Cache[string, rawEntry] {
		return sharded[maphash.String(seed, id)%uint64(len(sharded))]
	}
	until := time.Now().Add(time.Hour).UnixNano()
	for _, id := range ids {
		if _, err := c.IsRevoked(ctx, id); err != nil {
			b.Fatal(err)
		}
		raw.Add(id, rawEntry{until: until})
		shardOf(id).Add(id, rawEntry{until: until})
	}
	rawCheck := func(cache func(string) *lru.Cache[string, rawEntry]) func(string) bool {
		return func(id string) bool {
			e, ok := cache(id).Get(id)
			if !ok || time.Now().UnixNano() >= e.until {
				b.Fatal("raw miss")
			}
			return e.revoked
		}
	}
	cachedCheck := func(id string) bool {
		revoked, err := c.IsRevoked(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		return revoked
	}

	// Each mode runs ours then the baselines back to back, so a loaded
	// machine slows them alike. -count repeats each sub-benchmark in a row,
	// so for paired rounds run the test binary several times instead.
	for _, mode := range []string{"serial", "parallel"} {
		for _, bb := range []struct {
			name  string
			check func(string) bool
		}{
			{"cached", cachedCheck},
			{"lru-raw", rawCheck(func(string) *lru.Cache[string, rawEntry] { return raw })},
			{"lru-raw-8shards", rawCheck(shardOf)},
		} {
			b.Run(mode+"/"+bb.name, func(b *testing.B) {
				b.ReportAllocs()
				if mode == "serial" {
					i := 0
					for b.Loop() {
						if bb.check(ids[i&mask]) {
							b.Fatal("revoked")
						}
						i++
					}
					return
				}
				var start atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(start.Add(7919)) // goroutines start at different tokens
					for pb.Next() {
						if bb.check(ids[i&mask]) {
							b.Fatal("revoked")
						}
						i++
					}
				})
			})
		}
	}
	if st := c.Stats(); st.BackendCalls != uint64(len(ids)) {
		b.Errorf("Stats = %+v: the benchmark missed", st)
	}
}

// BenchmarkRedisMix measures checks end to end over a real Redis with a
// realistic mix: 99% of checks on 1,024 hot tokens that are not revoked,
// 1% on a token never seen before (a fresh login). It runs plain redisstore
// and cached in front of it (default options) on the same server and
// client, serial and parallel, and reports the backend calls each makes
// per 1,000 checks.
func BenchmarkRedisMix(b *testing.B) {
	client := redistest.Client(b, redisServer.Get(b).Addr())
	ctx := context.Background()
	hot := hotIDs()
	var fresh atomic.Int64
	check := func(b *testing.B, s blocklist.Store, i int) {
		id := hot[i%len(hot)]
		if i%100 == 99 {
			id = "fresh-" + strconv.FormatInt(fresh.Add(1), 10)
		}
		if revoked, err := s.IsRevoked(ctx, id); err != nil || revoked {
			b.Fatal(revoked, err)
		}
	}
	for _, mode := range []string{"serial", "parallel"} {
		for _, name := range []string{"cached", "redisstore"} {
			b.Run(mode+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				var s blocklist.Store = redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(b)))
				c, _ := cached.New(s)
				b.Cleanup(func() { c.Close() })
				if name == "cached" {
					s = c
				}
				if mode == "serial" {
					i := 0
					for b.Loop() {
						check(b, s, i)
						i++
					}
				} else {
					var start atomic.Int64
					b.RunParallel(func(pb *testing.PB) {
						i := int(start.Add(7919)) // goroutines start at different tokens
						for pb.Next() {
							check(b, s, i)
							i++
						}
					})
				}
				calls := float64(b.N) // plain redisstore: one per check
				if name == "cached" {
					calls = float64(c.Stats().BackendCalls)
				}
				b.ReportMetric(calls*1000/float64(b.N), "backend-calls/1000checks")
			})
		}
	}
}

// BenchmarkStore runs the module's shared workload (conformance.RunBenchmarks)
// through cached in front of memorystore and of redisstore, so these rows
// are measured like every backend's.
func BenchmarkStore(b *testing.B) {
	b.Run("next=memorystore", func(b *testing.B) {
		conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
			return newCached(b, newMemory(b))
		})
	})
	b.Run("next=redisstore", func(b *testing.B) {
		client := redistest.Client(b, redisServer.Get(b).Addr())
		conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
			return newCached(b, redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(b))))
		})
	})
}

// BenchmarkPropagation measures how long a revocation made on instance A
// takes to reach instance B over Redis: from the call of A's Revoke to the
// moment B's watch has applied it (B's Stats.WatchEvents counts it), one
// revocation at a time. It reports p50 and p99 over b.N revocations; run it
// with -benchtime 1000x for the figure of the README.
func BenchmarkPropagation(b *testing.B) {
	for _, mode := range []string{"cache", "replica"} {
		b.Run(mode, func(b *testing.B) {
			addr, prefix := redisServer.Get(b).Addr(), redistest.Prefix(b)
			a, err := cached.New(redisstore.New(redistest.Client(b, addr), redisstore.WithPrefix(prefix)))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { a.Close() })
			var opts []cached.Option
			if mode == "replica" {
				opts = append(opts, cached.WithReplica())
			}
			dst, err := cached.New(redisstore.New(redistest.Client(b, addr), redisstore.WithPrefix(prefix)), opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { dst.Close() })
			for dst.Stats().Watch != cached.WatchLive {
				time.Sleep(time.Millisecond)
			}
			ctx := context.Background()
			exp := time.Now().Add(time.Hour)
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				want := dst.Stats().WatchEvents + 1
				start := time.Now()
				if err := a.Revoke(ctx, "propagation-"+strconv.Itoa(i), exp); err != nil {
					b.Fatal(err)
				}
				for dst.Stats().WatchEvents < want {
					runtime.Gosched()
				}
				lat = append(lat, time.Since(start))
				i++
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			if mode == "replica" {
				if n := dst.Stats().BackendCalls; n != 0 {
					b.Errorf("the replica made %d backend calls", n)
				}
			}
		})
	}
}

// BenchmarkReplicaMemory measures what a replica holding a million live
// revocations costs in memory. The replica is a memorystore filled from the
// stream, so this fills one with a million 36-byte ids (UUIDs) and reports
// the heap it grew by, per revocation and per million.
func BenchmarkReplicaMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := memorystore.New()
		exp := time.Now().Add(time.Hour)
		for i := range n {
			jti := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
			if err := m.Revoke(context.Background(), jti, exp.Add(time.Duration(i))); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := float64(after.HeapAlloc-before.HeapAlloc) / n
		b.ReportMetric(per, "B/revocation")
		b.ReportMetric(per*n/(1<<20), "MiB/million")
		runtime.KeepAlive(m)
		m.Close()
	}
}
