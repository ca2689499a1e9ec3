package cached_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// newSlowStore returns a pausedLookups over m whose lookups wait a random
// time (up to 400 ms, past LostLookupTimeout) before answering what they
// read: lookups in flight hold answers that revocations, cuts and resyncs
// overtake.
func newSlowStore(m *memorystore.Store, rng *rand.Rand) *pausedLookups {
	var mu sync.Mutex
	return &pausedLookups{Store: m, pause: func(ctx context.Context) error {
		mu.Lock()
		d := time.Duration(rng.IntN(5000)) * time.Microsecond
		if rng.IntN(5) == 0 {
			d = time.Duration(rng.IntN(400)) * time.Millisecond
		}
		mu.Unlock()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

// Property, in a synctest bubble: every check that begins at a later
// instant than a Revoke of one of its ids returned (through this Store or
// straight into the store, so announced) answers "revoked" for it or fails,
// whatever happens meanwhile: slow lookups shared by single checks and
// batches (with repeated ids), callers that give up, cuts of the watch,
// replays (Resumed) and gaps (Synced; a replica reloads). "Not revoked"
// answers are kept for an hour, so any answer reused across a revocation
// shows. The time between the two instants lets every goroutine of the
// bubble run: the watch has delivered what it can.
func TestNoNotRevokedAfterRevokeReturned(t *testing.T) {
	for _, replica := range []bool{false, true} {
		for seed := uint64(1); seed <= 6; seed++ {
			t.Run(fmt.Sprintf("replica=%v/seed=%d", replica, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { testNoNotRevoked(t, replica, seed) })
			})
		}
	}
}

func testNoNotRevoked(t *testing.T, replica bool, seed uint64) {
	const (
		logMax = 20
		nIDs   = 60
	)
	rng := rand.New(rand.NewPCG(seed, 0))
	var rngMu sync.Mutex
	intn := func(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return rng.IntN(n) }
	m := newMemory(t, memorystore.WithLogMaxLen(logMax))
	next := newSlowStore(m, rand.New(rand.NewPCG(seed, 1)))
	// Every revocation is announced, so no TTL of "not revoked" answers
	// excuses a stale one; short ones make more lookups, long ones keep
	// answers across more events.
	ttl := []time.Duration{0, 20 * time.Millisecond, time.Hour}[seed%3]
	opts := []cached.Option{cached.WithNegativeTTL(ttl), cached.WithWatchNegativeTTL(ttl)}
	if replica {
		opts = append(opts, cached.WithReplica())
	}
	b := newCached(t, next, opts...)
	synctest.Wait()
	ids := make([]string, nIDs)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%d", i)
	}
	type revocation struct{ at, end time.Time } // when the Revoke returned, its exp
	var (
		knownMu sync.Mutex
		known   = map[string][]revocation{}
	)
	// knownBefore returns the latest end of the revocations of jti whose
	// Revoke returned before at, or the zero Time.
	knownBefore := func(jti string, at time.Time) time.Time {
		knownMu.Lock()
		defer knownMu.Unlock()
		var end time.Time
		for _, r := range known[jti] {
			if r.at.Before(at) && r.end.After(end) {
				end = r.end
			}
		}
		return end
	}
	var bad atomic.Int64
	var checks, answered, idChecks atomic.Int64
	report := func(format string, args ...any) {
		if bad.Add(1) <= 5 {
			t.Errorf(format+"; Stats %+v", append(args, b.Stats())...)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(time.Duration(intn(2000)) * time.Microsecond)
				batch := make([]string, 1+intn(3))
				for k := range batch {
					batch[k] = ids[intn(nIDs)]
				}
				if len(batch) > 1 && intn(3) == 0 {
					batch[1] = batch[0]
				}
				ctx, cancel := context.WithCancel(context.Background())
				if intn(5) == 0 { // a caller that gives up while others wait
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(1+intn(300))*time.Millisecond)
				}
				start := time.Now()
				until := make([]time.Time, len(batch))
				var err error
				switch w % 3 {
				case 0:
					var r bool
					r, err = b.IsRevoked(ctx, batch[0])
					batch = batch[:1]
					if r {
						until[0] = start.Add(time.Hour)
					}
				case 1:
					until[0], err = b.RevokedUntil(ctx, batch[0])
					batch = batch[:1]
				default:
					err = b.RevokedUntilEach(ctx, batch, until)
				}
				cancel()
				checks.Add(1)
				idChecks.Add(int64(len(batch)))
				if err != nil {
					continue
				}
				answered.Add(1)
				for k, jti := range batch {
					end := knownBefore(jti, start)
					switch {
					case end.IsZero():
					case until[k].IsZero():
						report("path %d: %s answered \"not revoked\" by a check begun at %v, after its Revoke returned", w%3, jti, start)
					case w%3 != 0 && until[k].Before(end):
						report("path %d: %s revoked until %v by a check begun at %v, after a Revoke until %v returned", w%3, jti, until[k], start, end)
					}
				}
			}
		})
	}
	var chaos sync.WaitGroup
	chaosStop := make(chan struct{})
	chaos.Go(func() { // cuts, some long enough to leave a gap
		for n := 0; ; n++ {
			select {
			case <-chaosStop:
				return
			default:
			}
			time.Sleep(time.Duration(intn(40)) * time.Millisecond)
			restore := m.CutWatches()
			if intn(3) == 0 {
				exp := time.Now().Add(time.Hour)
				for i := range logMax + 5 {
					mustRevoke(t, m, fmt.Sprintf("filler-%d-%d", n, i), exp)
				}
			}
			time.Sleep(time.Duration(intn(40)) * time.Millisecond)
			restore()
		}
	})
	rngMu.Lock()
	order := rng.Perm(nIDs)
	rngMu.Unlock()
	// Half the ids are revoked, then some of those again with a later exp
	// (as LogoutAll moves its subject's cutoff): a check begun after must
	// see the later end. The other half stays unrevoked: lookups all along.
	revokes := append(append([]int(nil), order[:nIDs/2]...), order[:nIDs/4]...)
	for n, i := range revokes {
		time.Sleep(time.Duration(intn(30)) * time.Millisecond)
		exp := time.Now().Add(time.Hour * time.Duration(1+n/(nIDs/2)))
		if (i+n)%3 == 0 {
			mustRevoke(t, b, ids[i], exp)
		} else {
			mustRevoke(t, m, ids[i], exp) // elsewhere: announced
		}
		knownMu.Lock()
		known[ids[i]] = append(known[ids[i]], revocation{at: time.Now(), end: exp})
		knownMu.Unlock()
	}
	time.Sleep(500 * time.Millisecond)
	close(chaosStop)
	chaos.Wait()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	synctest.Wait()
	for _, i := range order[:nIDs/2] {
		mustRevoked(t, b, ids[i], true, "revoked during the run")
	}
	if st := b.Stats(); st.Hits+st.Misses != uint64(idChecks.Load())+nIDs/2 {
		t.Errorf("%d hits and %d misses for %d checks of an id", st.Hits, st.Misses, idChecks.Load()+nIDs/2)
	}
	if answered.Load() < 100 {
		t.Errorf("only %d of %d checks answered", answered.Load(), checks.Load())
	}
	t.Logf("%d checks, %d answered; Stats %+v", checks.Load(), answered.Load(), b.Stats())
	time.Sleep(time.Second) // lookups abandoned by their callers end
}
