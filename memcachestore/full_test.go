package memcachestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/memcachestore"
)

const fillWorkers = 8

func fillID(i int) string { return fmt.Sprintf("%08x-e29b-41d4-a716-446655440000", i) }

// fill revokes ids 0 to limit-1 from several goroutines, each stopping at
// its first error. It returns which ids were acknowledged and the first
// error, if any.
func fill(t *testing.T, s *memcachestore.Store, limit int) ([]bool, error) {
	t.Helper()
	exp := time.Now().Add(time.Hour)
	acked := make([]bool, limit)
	errs := make(chan error, fillWorkers)
	for w := range fillWorkers {
		go func() {
			for i := w; i < limit; i += fillWorkers {
				if err := s.Revoke(context.Background(), fillID(i), exp); err != nil {
					errs <- err
					return
				}
				acked[i] = true
			}
			errs <- nil
		}()
	}
	var first error
	for range fillWorkers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return acked, first
}

func newFillClient(srv *testserver.Server) *memcache.Client {
	c := newClient(srv.Addr())
	c.MaxIdleConns = fillWorkers
	return c
}

// countRevoked reports how many acknowledged ids, and how many in all, read
// as revoked.
func countRevoked(t *testing.T, s *memcachestore.Store, acked []bool) (kept, total int) {
	t.Helper()
	for i, ok := range acked {
		if !ok {
			continue
		}
		total++
		revoked, err := s.IsRevoked(context.Background(), fillID(i))
		if err != nil {
			t.Fatal(err)
		}
		if revoked {
			kept++
		}
	}
	return kept, total
}

// TestFullServer shows the two ways a full memcached behaves. By default it
// evicts old entries, and revocations vanish without an error: the truth the
// package documentation warns about. With -M it refuses new entries
// instead: Revoke returns an error and every acknowledged revocation stays.
func TestFullServer(t *testing.T) {
	t.Parallel()
	const limit = 12000 // ~1.4 MB of entries, past the ~8,700 that -m 1 holds
	t.Run("evicts", func(t *testing.T) {
		t.Parallel()
		srv := testserver.Memcached(t, "-m", "1", "-I", "512k")
		s := memcachestore.New(newFillClient(srv))
		acked, err := fill(t, s, limit)
		if err != nil {
			t.Fatal(err)
		}
		kept, n := countRevoked(t, s, acked[:1000]) // the oldest go first
		evictions := statValue(t, srv.Addr(), "evictions")
		t.Logf("all %d revocations acknowledged; %d evictions; of the first %d, %d still revoked", limit, evictions, n, kept)
		if evictions == 0 || kept == n {
			t.Errorf("a full memcached kept every revocation (%d evictions): the package doc says it forgets", evictions)
		}
	})
	t.Run("refuses with -M", func(t *testing.T) {
		t.Parallel()
		srv := testserver.Memcached(t, "-m", "1", "-I", "512k", "-M")
		s := memcachestore.New(newFillClient(srv))
		acked, err := fill(t, s, limit)
		if err == nil {
			t.Fatalf("%d revocations fit in -m 1; raise the limit", limit)
		}
		wantFailure(t, "Revoke on a full server with -M", err)
		kept, n := countRevoked(t, s, acked)
		if kept != n {
			t.Errorf("%d revocations acknowledged, only %d still revoked", n, kept)
		}
		t.Logf("%d revocations acknowledged and kept, then: %v", n, err)
	})
}
