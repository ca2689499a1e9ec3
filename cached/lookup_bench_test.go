package cached_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/cached"
)

// BenchmarkLookupPaths measures each way a check is answered over
// memorystore, so a change to the lookup path shows its cost on every one:
// a hit of a single check and of a batch (a token's id, session and
// subject), a hit served by the replica, and a miss of each (NegativeTTL 0
// without a watch: every check reads the next Store), serial and with
// every core checking a few ids (misses share lookups). Hits must not
// allocate; compare runs of this benchmark built from two commits, run one
// after the other, for a ratio.
func BenchmarkLookupPaths(b *testing.B) {
	ctx := context.Background()
	ids := hotIDs()
	mask := len(ids) - 1
	single := func(c *cached.Store) func(i int) {
		return func(i int) {
			if revoked, err := c.IsRevoked(ctx, ids[i&mask]); err != nil || revoked {
				b.Fatal(revoked, err)
			}
		}
	}
	batch := func(c *cached.Store) func(i int) {
		return func(i int) {
			var until [3]time.Time
			id := ids[i&mask]
			if err := c.RevokedUntilEach(ctx, []string{id, ids[(i+1)&mask], ids[(i+2)&mask]}, until[:]); err != nil || !until[0].IsZero() {
				b.Fatal(until, err)
			}
		}
	}
	warm := func(c *cached.Store) {
		for _, id := range ids {
			if _, err := c.IsRevoked(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	hot := func(b *testing.B) *cached.Store {
		c := newCached(b, newMemory(b), cached.WithNegativeTTL(time.Hour), cached.WithoutWatch())
		warm(c)
		return c
	}
	cold := func(b *testing.B) *cached.Store {
		return newCached(b, newMemory(b), cached.WithNegativeTTL(0), cached.WithoutWatch())
	}
	replica := func(b *testing.B) *cached.Store {
		c := newCached(b, newMemory(b), cached.WithReplica(), cached.WithLogger(slog.New(slog.DiscardHandler)))
		for !c.Stats().ReplicaReady {
			time.Sleep(time.Millisecond)
		}
		return c
	}
	for _, bb := range []struct {
		name  string
		store func(b *testing.B) *cached.Store
		check func(c *cached.Store) func(i int)
	}{
		{"hit/single", hot, single},
		{"hit/batch3", hot, batch},
		{"replica/single", replica, single},
		{"replica/batch3", replica, batch},
		{"miss/single", cold, single},
		{"miss/batch3", cold, batch},
	} {
		b.Run(bb.name+"/serial", func(b *testing.B) {
			check := bb.check(bb.store(b))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				check(i)
				i++
			}
		})
		b.Run(bb.name+"/parallel", func(b *testing.B) {
			check := bb.check(bb.store(b))
			b.ReportAllocs()
			var start atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(start.Add(1)) & 3 // four ids: concurrent misses meet
				for pb.Next() {
					check(i)
				}
			})
		})
	}
}
