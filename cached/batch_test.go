package cached_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
)

// A token's id, session and subject: the misses go to the next Store in one
// call, and once cached the same check makes none.
func TestRevokedUntilEachOneCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := newMemory(t)
	c := newCached(t, mem, cached.WithNegativeTTL(time.Hour), cached.WithoutWatch())
	exp := time.Now().Add(time.Hour)
	mustRevoke(t, mem, "sid:s1", exp) // behind the cache's back

	ids := []string{"jti-1", "sid:s1", "sub:alice"}
	until := make([]time.Time, len(ids))
	if err := c.RevokedUntilEach(ctx, ids, until); err != nil {
		t.Fatal(err)
	}
	if !until[0].IsZero() || until[1].UnixMilli() < exp.UnixMilli() || !until[2].IsZero() {
		t.Fatalf("until = %v; want zero, %v, zero", until, exp)
	}
	if st := c.Stats(); st.BackendCalls != 1 || st.Misses != 3 {
		t.Errorf("after a cold batch of 3: %d backend calls, %d misses; want 1 and 3", st.BackendCalls, st.Misses)
	}
	if err := c.RevokedUntilEach(ctx, ids, until); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.BackendCalls != 1 || st.Hits != 3 {
		t.Errorf("after a warm batch of 3: %d backend calls, %d hits; want 1 and 3", st.BackendCalls, st.Hits)
	}
	if until[1].IsZero() {
		t.Error("the cached revocation of sid:s1 was lost")
	}
	// A revocation through the cache shows at once in the next batch.
	mustRevoke(t, c, "jti-1", exp)
	if err := c.RevokedUntilEach(ctx, ids, until); err != nil || until[0].IsZero() {
		t.Errorf("after Revoke(jti-1): until[0] = %v, %v; want revoked", until[0], err)
	}
}

// RevokeOnce asks the next Store, never the cache, and over a Store that
// cannot revoke once it says so.
func TestRevokeOnceThroughCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := newMemory(t)
	c := newCached(t, mem, cached.WithNegativeTTL(time.Hour))
	exp := time.Now().Add(time.Hour)

	mustRevoked(t, c, "r1", false, "caches a negative answer for an hour")
	mustRevoke(t, mem, "r1", exp) // another process rotated it
	if first, err := c.RevokeOnce(ctx, "r1", exp); first || err != nil {
		t.Fatalf("RevokeOnce of an id revoked behind the cache = %v, %v; want false, nil", first, err)
	}
	mustRevoked(t, c, "r1", true, "the stale negative entry was dropped")

	if first, err := c.RevokeOnce(ctx, "r2", exp); !first || err != nil {
		t.Fatalf("RevokeOnce(r2) = %v, %v; want true, nil", first, err)
	}
	calls := c.Stats().BackendCalls
	mustRevoked(t, c, "r2", true, "recorded locally by RevokeOnce")
	if c.Stats().BackendCalls != calls {
		t.Error("the check after RevokeOnce asked the next Store")
	}

	plain := newCached(t, plainStore{mem})
	if _, err := plain.RevokeOnce(ctx, "r3", exp); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("RevokeOnce over a plain Store: error = %v; want errors.ErrUnsupported", err)
	}
	var _ blocklist.OnceStore = plain
}
