package cached_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// failingLookups is a memorystore whose lookups fail while fail is set
// (its watch and writes go on working): a next Store that cannot answer.
type failingLookups struct {
	*memorystore.Store
	fail atomic.Bool
}

var errLookupsDown = errors.New("failinglookups: down")

func (f *failingLookups) IsRevoked(ctx context.Context, jti string) (bool, error) {
	if f.fail.Load() {
		return false, errLookupsDown
	}
	return f.Store.IsRevoked(ctx, jti)
}

func (f *failingLookups) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if f.fail.Load() {
		return time.Time{}, errLookupsDown
	}
	return f.Store.RevokedUntil(ctx, jti)
}

func (f *failingLookups) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	if f.fail.Load() {
		return errLookupsDown
	}
	return f.Store.RevokedUntilEach(ctx, jtis, until)
}

// A partition in process: the watch is cut while the store goes on
// taking revocations from another instance. The Lost distrusts every
// cached "not revoked" before the next check, each check then reads the
// store, and after the heal no check answers from an answer cached before
// the cut until the watch has replayed the gap.
func TestPartitionInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := memorystore.New()
		defer m.Close()
		b, err := cached.New(m, cached.WithWatchNegativeTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		synctest.Wait()
		if st := b.Stats(); st.Watch != cached.WatchLive {
			t.Fatalf("watch %s, want live", st.Watch)
		}
		mustRevoked(t, b, "x", false, "cached as not revoked, for an hour")
		calls := b.Stats().BackendCalls
		mustRevoked(t, b, "x", false, "a hit")
		if b.Stats().BackendCalls != calls {
			t.Fatal("a live watch's negative was not a hit")
		}

		restore := m.CutWatches()
		synctest.Wait()
		if st := b.Stats(); st.Watch != cached.WatchLost {
			t.Fatalf("watch %s after the cut, want lost", st.Watch)
		}
		if err := m.Revoke(ctx, "x", time.Now().Add(time.Hour)); err != nil { // another instance
			t.Fatal(err)
		}
		mustRevoked(t, b, "x", true, "revoked during the cut: read from the store")
		mustRevoked(t, b, "y", false, "never revoked")
		if err := m.Revoke(ctx, "y", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		mustRevoked(t, b, "y", true, "no negative is cached while lost")

		restore()
		mustRevoked(t, b, "y", true, "healed, the replay not yet applied")
		synctest.Wait()
		if st := b.Stats(); st.Watch != cached.WatchLive || st.WatchSyncs != 1 {
			t.Fatalf("after the heal: %+v, want live, resumed without a sync", st)
		}
		mustRevoked(t, b, "x", true, "replayed")
	})
}

// WithStaleIfError in process: while the watch is lost and the store
// fails, answers cached while the watch was live come from memory with no
// backend call, for d; then checks fail closed again.
func TestStaleIfErrorInProcess(t *testing.T) {
	for _, replica := range []bool{false, true} {
		name := "cache"
		if replica {
			name = "replica"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				m := memorystore.New()
				defer m.Close()
				f := &failingLookups{Store: m}
				const d = time.Minute
				opts := []cached.Option{cached.WithWatchNegativeTTL(time.Hour), cached.WithStaleIfError(d)}
				if replica {
					opts = append(opts, cached.WithReplica())
				}
				if err := m.Revoke(ctx, "old", time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				b, err := cached.New(f, opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				synctest.Wait()
				mustRevoked(t, b, "seen", false, "cached")
				mustRevoke(t, b, "revoked", time.Now().Add(time.Hour))
				synctest.Wait()

				restore := m.CutWatches()
				synctest.Wait()
				lostAt := time.Now()
				f.fail.Store(true)
				calls := b.Stats().BackendCalls
				mustRevoked(t, b, "seen", false, "stale, from memory")
				mustRevoked(t, b, "revoked", true, "from memory")
				if replica {
					mustRevoked(t, b, "old", true, "from the replica")
					mustRevoked(t, b, "never", false, "from the replica")
				} else if _, err := b.IsRevoked(ctx, "never"); err == nil {
					t.Error("an id with no cached answer answered during the outage")
				}
				st := b.Stats()
				if !st.StaleSince.Equal(lostAt) || st.StaleAnswers == 0 {
					t.Errorf("Stats %+v, want StaleSince %v and stale answers", st, lostAt)
				}
				if !replica && st.BackendCalls != calls+1 || replica && st.BackendCalls != calls {
					t.Errorf("backend calls during the outage: %d", st.BackendCalls-calls)
				}
				until := make([]time.Time, 2)
				if err := b.RevokedUntilEach(ctx, []string{"seen", "revoked"}, until); err != nil || !until[0].IsZero() || until[1].IsZero() {
					t.Errorf("RevokedUntilEach during the outage: %v, %v", until, err)
				}

				time.Sleep(d)
				if _, err := b.IsRevoked(ctx, "seen"); err == nil {
					t.Error("after d, a cached answer still came from memory")
				}
				mustRevoked(t, b, "revoked", true, "a known revocation holds until its exp")
				if st := b.Stats(); !st.StaleSince.IsZero() {
					t.Errorf("after d, StaleSince = %v, want zero", st.StaleSince)
				}

				f.fail.Store(false)
				restore()
				synctest.Wait()
				if st := b.Stats(); st.Watch != cached.WatchLive || !st.StaleSince.IsZero() {
					t.Errorf("after the heal: %+v", st)
				}
				mustRevoked(t, b, "seen", false, "fresh")
			})
		})
	}
}

// Without WithStaleIfError, the same outage fails closed.
func TestStaleIfErrorOffFailsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memorystore.New()
		defer m.Close()
		f := &failingLookups{Store: m}
		b, err := cached.New(f, cached.WithWatchNegativeTTL(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		synctest.Wait()
		mustRevoked(t, b, "seen", false, "cached")
		restore := m.CutWatches()
		defer restore()
		synctest.Wait()
		f.fail.Store(true)
		if _, err := b.IsRevoked(context.Background(), "seen"); !errors.Is(err, errLookupsDown) {
			t.Errorf("IsRevoked during the outage: %v, want the store's error", err)
		}
		if st := b.Stats(); st.StaleAnswers != 0 || !st.StaleSince.IsZero() {
			t.Errorf("Stats %+v: stale answers without WithStaleIfError", st)
		}
		if _, err := cached.New(m, cached.WithStaleIfError(-time.Second)); err == nil {
			t.Error("WithStaleIfError(-1s): no error")
		}
	})
}
