package cached_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// Issue 14, case 4: a service in another language that revokes with the
// documented recipe (the key and its announcement in one MULTI/EXEC) is
// seen by a watching cache as fast as a Revoke of this module, even after
// the cache answered "not revoked" for that id, with its exp to the
// millisecond. A writer that leaves the XADD out is seen only when that
// answer ends, WatchNegativeTTL after it was read, which is why the recipe
// includes it: TestWatchNegativeTTL proves that in process.
func TestOutOfBandWriterRecipe(t *testing.T) {
	t.Parallel()
	addr := redisServer.Get(t).Addr()
	prefix := redistest.Prefix(t)
	c := newCached(t, redisstore.New(redistest.Client(t, addr), redisstore.WithPrefix(prefix)),
		cached.WithWatchNegativeTTL(time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Watch != cached.WatchLive {
		if time.Now().After(deadline) {
			t.Fatalf("the watch is not live after 10 s: %+v", c.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	exp := time.Now().Add(time.Hour).UnixMilli()
	mustRevoked(t, c, "with-xadd", false, "not revoked yet: the cache keeps this answer for an hour")

	// The recipe, as another service sends it.
	redistest.CLI(t, addr, fmt.Sprintf(`MULTI
PEXPIREAT "%[1]swith-xadd" %[2]d GT
SET "%[1]swith-xadd" 1 PXAT %[2]d NX
XADD "%[1]s" MAXLEN ~ 100000 * jti with-xadd exp %[2]d
EXEC
`, prefix, exp))
	const watchBound = 2 * time.Second // as the conformance suite's Watch subtest
	if !eventually(c, "with-xadd", watchBound) {
		t.Errorf("a revocation written with the recipe's XADD was not seen within %s", watchBound)
	}
	until, err := c.RevokedUntil(context.Background(), "with-xadd")
	if err != nil || until.UnixMilli() != exp {
		t.Errorf("RevokedUntil of the recipe's revocation = %s, %v; want %d ms", until, err, exp)
	}
}

// eventually reports whether jti is revoked in c within d.
func eventually(c *cached.Store, jti string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if ok, err := c.IsRevoked(context.Background(), jti); err == nil && ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
