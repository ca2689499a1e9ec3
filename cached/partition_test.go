package cached_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/chaosproxy"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

func proxied(t *testing.T, addr string) *chaosproxy.Proxy {
	t.Helper()
	p, err := chaosproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// staleCounter checks ids on a Store from several goroutines until
// stopped, and counts the stale answers: "not revoked" for an id whose
// Revoke had returned before the check began.
type staleCounter struct {
	revoked       sync.Map // jti -> time.Time its Revoke returned
	grace         time.Duration
	cutAt         atomic.Int64 // unix ns when the test cut B off; 0 before
	checks, stale atomic.Int64
	graced        atomic.Int64 // "not revoked" within grace of the Revoke
	errs          atomic.Int64
	firstStale    atomic.Value // string
	stop          chan struct{}
	wg            sync.WaitGroup
}

// countStale starts workers checking ids on c. A "not revoked" answer for
// an id whose Revoke returned before the check began is stale once the
// worker has seen the watch not live (the break was noticed), or when the
// check began more than grace after the Revoke; otherwise it is counted
// as answered before the break was noticed (graced).
func countStale(c *cached.Store, ids []string, workers int, grace, pause time.Duration) *staleCounter {
	sc := &staleCounter{stop: make(chan struct{}), grace: grace}
	for w := range workers {
		sc.wg.Add(1)
		go func() {
			defer sc.wg.Done()
			sawLost := false
			for i := w; ; i++ {
				select {
				case <-sc.stop:
					return
				default:
				}
				jti := ids[i%len(ids)]
				start := time.Now()
				at, wasRevoked := sc.revoked.Load(jti)
				stAtStart := c.Stats()
				// Only a loss seen after this cut began means B noticed it;
				// one from before (a spurious timeout on a loaded machine,
				// since resumed) does not.
				if cut := sc.cutAt.Load(); stAtStart.Watch != cached.WatchLive && cut != 0 && start.UnixNano() >= cut {
					sawLost = true
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				ok, err := c.IsRevoked(ctx, jti)
				cancel()
				sc.checks.Add(1)
				if pause > 0 {
					time.Sleep(pause)
				}
				switch {
				case err != nil:
					sc.errs.Add(1)
					time.Sleep(time.Millisecond)
				case ok || !wasRevoked:
				case sawLost || start.Sub(at.(time.Time)) > sc.grace:
					sc.stale.Add(1)
					sc.firstStale.CompareAndSwap(nil, fmt.Sprintf("%s: began %s after its Revoke, sawLost %v, Stats at start %+v", jti, start.Sub(at.(time.Time)), sawLost, stAtStart))
				default:
					sc.graced.Add(1)
				}
			}
		}()
	}
	return sc
}

func (sc *staleCounter) finish() { close(sc.stop); sc.wg.Wait() }

// TestPartition is the partition: instance B reaches Redis through
// a proxy that cuts it off, by refusing connections or by accepting and
// closing them, while instance A, which still reaches Redis, revokes 100
// ids. B, checking those ids in a loop from 8 goroutines, never answers
// "not revoked" for one whose Revoke returned, during the cut or after the
// heal, whatever its client's options; and it reports the watch lost.
// Each client's options are tried with one way of cutting (both ways with
// the patient client, whose retries and timeouts hide a cut longest);
// TestPartitionInProcess and TestCut cover the cache's side in process.
func TestPartition(t *testing.T) {
	t.Parallel()
	clients := map[string]func(addr string) *redis.Options{
		"default": func(addr string) *redis.Options { return &redis.Options{Addr: addr} },
		"context": func(addr string) *redis.Options { return &redis.Options{Addr: addr, ContextTimeoutEnabled: true} },
		"patient-retry": func(addr string) *redis.Options {
			return &redis.Options{Addr: addr, MaxRetries: 20, DialTimeout: 10 * time.Second, ReadTimeout: time.Minute}
		},
	}
	for _, tc := range []struct {
		mode   chaosproxy.Mode
		client string
	}{
		{chaosproxy.Refuse, "default"},
		{chaosproxy.AcceptClose, "context"},
		{chaosproxy.Refuse, "patient-retry"},
		{chaosproxy.AcceptClose, "patient-retry"},
	} {
		t.Run(tc.mode.String()+"/"+tc.client, func(t *testing.T) {
			t.Parallel()
			testPartition(t, tc.mode, clients[tc.client])
		})
	}
}

func testPartition(t *testing.T, mode chaosproxy.Mode, clientOpts func(string) *redis.Options) {
	addr := redisServer.Get(t).Addr()
	prefix := redistest.Prefix(t)
	p := proxied(t, addr)
	a := instance(t, redistest.Client(t, addr), prefix)
	bClient := redis.NewClient(clientOpts(p.Addr()))
	t.Cleanup(func() { bClient.Close() })
	b := instance(t, bClient, prefix)
	waitLive(t, b)
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("partition-%d", i)
		mustRevoked(t, b, ids[i], false, "cached as not revoked, for an hour")
	}
	sc := countStale(b, ids, 8, time.Second, 0)
	time.Sleep(20 * time.Millisecond)

	sc.cutAt.Store(time.Now().UnixNano())
	if err := p.Set(mode); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	for _, jti := range ids {
		mustRevoke(t, a, jti, exp)
		sc.revoked.Store(jti, time.Now())
	}
	// The watch notices within its silence bound (a loaded machine may
	// take longer); the cut lasts until then, and a little after.
	deadline := time.Now().Add(redisstore.WatchSilenceBound + 5*time.Second)
	for b.Stats().Watch != cached.WatchLost && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	lostDuringCut := b.Stats().Watch == cached.WatchLost
	time.Sleep(100 * time.Millisecond)
	if err := p.Set(chaosproxy.Pass); err != nil {
		t.Fatal(err)
	}
	waitLive(t, b)
	time.Sleep(50 * time.Millisecond) // checks after the heal
	sc.finish()
	t.Logf("%s: %d checks (%d errors), %d stale, %d \"not revoked\" before B noticed the break", mode, sc.checks.Load(), sc.errs.Load(), sc.stale.Load(), sc.graced.Load())
	if n := sc.stale.Load(); n > 0 {
		t.Errorf("B answered \"not revoked\" %d times for revoked ids (first %v)", n, sc.firstStale.Load())
	}
	if !lostDuringCut {
		t.Error("B's Stats did not report the watch lost during the cut")
	}
	for _, jti := range ids {
		mustRevoked(t, b, jti, true, "revoked during the cut")
	}
}

// TestSilentServerBound: with the server frozen (SIGSTOP: connections
// stay open, nothing answers), no check waits longer than the watch's
// silence bound plus LostLookupTimeout: without WithStaleIfError it fails
// closed, with it a cached answer comes from memory. TestLostBoundsLookups
// proves the cache's part of the bound in process; a killed server
// (TestRedisOutage) refuses connections at once.
func TestSilentServerBound(t *testing.T) {
	t.Parallel()
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale=%v", stale), func(t *testing.T) {
			t.Parallel()
			testSilentServerBound(t, syscall.SIGSTOP, stale)
		})
	}
}

func testSilentServerBound(t *testing.T, sig syscall.Signal, stale bool) {
	srv := testserver.Redis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr()}) // default options
	t.Cleanup(func() { client.Close() })
	opts := []cached.Option{}
	if stale {
		opts = append(opts, cached.WithStaleIfError(time.Minute))
	}
	b := instance(t, client, redistest.Prefix(t), opts...)
	waitLive(t, b)
	mustRevoke(t, b, "revoked", time.Now().Add(time.Hour))
	// The announcement of "revoked" keeps a lookup in flight from caching.
	waitFor(t, 5*time.Second, "the announcement", func() bool { return b.Stats().WatchEvents >= 1 })
	mustRevoked(t, b, "seen", false, "cached as not revoked")

	pid := srv.PID()
	if sig == syscall.SIGSTOP {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	bound := redisstore.WatchSilenceBound + 250*time.Millisecond + cached.LostLookupTimeout + 1500*time.Millisecond // slack for CI
	var answered, failed int
	var worst time.Duration
	for time.Since(stopped) < 2*redisstore.WatchSilenceBound {
		for i, jti := range []string{"seen", "unseen", "revoked"} {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			ok, err := b.IsRevoked(ctx, jti)
			cancel()
			worst = max(worst, time.Since(start))
			switch {
			case err != nil:
				failed++
			case i == 2 && !ok:
				t.Fatal("a revoked id answered not revoked")
			default:
				answered++
			}
		}
	}
	st := b.Stats()
	t.Logf("%s stale=%v: worst check %s, %d answered, %d failed, Stats %+v", sig, stale, worst.Round(time.Millisecond), answered, failed, st)
	if worst > bound {
		t.Errorf("a check waited %s with the server silent, want at most %s", worst, bound)
	}
	if st.Watch != cached.WatchLost {
		t.Errorf("watch %s, want lost", st.Watch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.IsRevoked(ctx, "unseen"); err == nil {
		t.Error("an id never checked answered while the server is down")
	}
	okSeen, errSeen := b.IsRevoked(ctx, "seen")
	switch {
	case stale && (errSeen != nil || okSeen):
		t.Errorf("with stale-if-error, a cached id answered %v, %v; want false, nil from memory", okSeen, errSeen)
	case !stale && errSeen == nil:
		t.Error("without stale-if-error, a distrusted cached id answered while the server is down")
	}
	if stale && (st.StaleSince.IsZero() || st.StaleAnswers == 0) {
		t.Errorf("Stats do not show stale answers: %+v", st)
	}
}
