package cached_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/chaosproxy"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// chaosMaxLen is the stream length of the chaos tests: short, so a gap
// of a few hundred revocations trims what a cut-off watcher had not read.
const chaosMaxLen = 20

// freezeGrace is how long after a revocation a watcher behind a frozen
// link may still answer "not revoked": the watch's silence bound, the
// blocking read in flight, and slack for a loaded machine.
const freezeGrace = redisstore.WatchSilenceBound + 250*time.Millisecond + 750*time.Millisecond

// chaosWorld is what a chaos round acts on: the writer A, the instances B
// behind the proxies, and the ways to hurt the server.
type chaosWorld struct {
	a     blocklist.Store
	admin redis.UniversalClient // talks to Redis directly
	// streams returns the keys of the announcement streams: the prefix
	// on a single server, one per master on Cluster.
	streams func(ctx context.Context) ([]string, error)
	proxies []*chaosproxy.Proxy
	bs      []*cached.Store
	// noticed[i] is the next Store of bs[i], telling when its watch last
	// reported a loss or a restart to bs[i].
	noticed []*noticing
	// restart, when set, restarts the server: keep says whether it keeps
	// its data (SAVE first) or rolls back to its last snapshot.
	restart func(t *testing.T, keep bool)
}

// chaosCounts are what a chaos test reports.
type chaosCounts struct {
	cuts, resumed, synced, revocations, checks, errs, misses int64
	graced                                                   int64 // "not revoked" within freezeGrace of a revocation over a silent link
	kinds                                                    map[string]int
}

// TestChaosStandalone and TestChaosCluster cut instances B off from Redis
// through proxies, at random, by refusing, by accepting and closing, and by
// freezing; in each gap instance A revokes fresh ids (each already cached
// by B as "not revoked"), and at random the stream is trimmed past what B
// read, deleted, or the server restarted keeping its data or rolling back
// to an older snapshot. B, in cache and in replica mode, is checked all the
// time by 4 goroutines and then a few thousand times right after each
// heal: a revoked id must never be answered "not revoked". Each logs its
// counts (go test -v: cuts by kind, recoveries, revocations, checks,
// misses); a run takes seconds, some tens under -race on a loaded machine.
func TestChaosStandalone(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t)
	p := proxied(t, srv.Addr())
	w := chaosWorld{proxies: []*chaosproxy.Proxy{p}}
	prefix := redistest.Prefix(t)
	opts := []redisstore.Option{redisstore.WithPrefix(prefix), redisstore.WithStreamMaxLen(chaosMaxLen)}
	aClient := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { aClient.Close() })
	w.admin = aClient
	w.a = redisstore.New(aClient, opts...)
	w.streams = func(context.Context) ([]string, error) { return []string{prefix}, nil }
	for _, replica := range []bool{false, true} {
		bClient := redis.NewClient(&redis.Options{Addr: p.Addr()}) // default options
		t.Cleanup(func() { bClient.Close() })
		w.add(t, redisstore.New(bClient, opts...), replica)
	}
	w.restart = func(t *testing.T, keep bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if keep {
			if err := aClient.Save(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	runChaos(t, &w, 12)
}

func TestChaosCluster(t *testing.T) {
	t.Parallel()
	c := testserver.RedisCluster(t, 3)
	// B dials every node through a proxy of its own.
	via := map[string]*chaosproxy.Proxy{}
	w := chaosWorld{}
	for _, addr := range c.Addrs() {
		p := proxied(t, addr)
		via[addr] = p
		w.proxies = append(w.proxies, p)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if p, ok := via[addr]; ok {
			addr = p.Addr()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	prefix := redistest.Prefix(t)
	opts := []redisstore.Option{redisstore.WithPrefix(prefix), redisstore.WithStreamMaxLen(chaosMaxLen)}
	aClient := redistest.ClusterClient(t, c.Addrs())
	w.admin = aClient
	w.a = redisstore.New(aClient, opts...)
	// Each master announces on a stream of its own, "{<tag>}<prefix>".
	w.streams = func(ctx context.Context) ([]string, error) {
		var keys []string
		var mu sync.Mutex
		err := aClient.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			iter := node.ScanType(ctx, 0, "{*}"+prefix, 100, "stream").Iterator()
			for iter.Next(ctx) {
				mu.Lock()
				keys = append(keys, iter.Val())
				mu.Unlock()
			}
			return iter.Err()
		})
		return keys, err
	}
	for _, replica := range []bool{false, true} {
		bClient := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Dialer: dial})
		t.Cleanup(func() { bClient.Close() })
		w.add(t, redisstore.New(bClient, opts...), replica)
	}
	runChaos(t, &w, 8)
}

// add makes an instance B over next.
func (w *chaosWorld) add(t *testing.T, next *redisstore.Store, replica bool) {
	opts := []cached.Option{cached.WithWatchNegativeTTL(time.Hour), cached.WithNegativeTTL(time.Hour)}
	if replica {
		opts = append(opts, cached.WithReplica())
	}
	n := &noticing{Store: next}
	w.noticed = append(w.noticed, n)
	w.bs = append(w.bs, newCached(t, n, opts...))
}

// noticing is a redisstore whose watch records when the subscriber has
// applied its last Lost or Synced: from then on the subscriber knows of
// the break, and trusts no "not revoked" answer from before it. Until
// then a break is not yet noticed: the connection is cut, but the watch's
// goroutine has not yet run to find out, which on a loaded machine may
// come after the heal.
type noticing struct {
	*redisstore.Store
	at atomic.Int64 // unix ns
}

func (n *noticing) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	return n.Store.Watch(ctx, func(ev blocklist.Event) {
		fn(ev)
		if ev.Kind == blocklist.Lost || ev.Kind == blocklist.Synced {
			n.at.Store(time.Now().UnixNano())
		}
	})
}

// runChaos plays rounds (CHAOS_MODE=freeze|refuse|accept-close,
// CHAOS_WHAT=none|trim|delete|restart-keep|restart-rollback and
// CHAOS_GAPMS force a round's kind, to reproduce one) of cut, damage and heal on w and reports the counts.
func runChaos(t *testing.T, w *chaosWorld, rounds int) {
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	var n chaosCounts
	n.kinds = map[string]int{}
	for _, b := range w.bs {
		waitLive(t, b)
	}
	// A round's recovery counts as synced when a B's watch synced between
	// its cut and the next one (or the end): a B may notice a damage only
	// after the round's checks.
	syncsBefore := make([]uint64, len(w.bs))
	classify := func(before []uint64) {
		if n.cuts == 0 {
			return
		}
		for i, b := range w.bs {
			if b.Stats().WatchSyncs > before[i] {
				n.synced++
			} else {
				n.resumed++
			}
		}
	}
	start := time.Now()
	var all []string // every id revoked so far
	exp := time.Now().Add(time.Hour)
	for round := range rounds {
		// Fresh ids, each cached by every B as "not revoked".
		size := 5 + rng.IntN(30)
		damage := []string{"none", "trim", "delete"}
		if w.restart != nil {
			damage = append(damage, "restart-keep", "restart-rollback")
		}
		what := damage[rng.IntN(len(damage))]
		if v := os.Getenv("CHAOS_WHAT"); v != "" {
			what = v
		}
		if what == "trim" {
			size = 3 * chaosMaxLen * (2 + rng.IntN(3))
		}
		ids := make([]string, size)
		for i := range ids {
			ids[i] = fmt.Sprintf("chaos-%d-%d", round, i)
		}
		for _, b := range w.bs {
			for _, jti := range ids[:min(len(ids), 50)] {
				_, _ = b.IsRevoked(ctx, jti) // errors allowed: a B may still be recovering
			}
		}
		mode := []chaosproxy.Mode{chaosproxy.Refuse, chaosproxy.AcceptClose, chaosproxy.Freeze}[rng.IntN(3)]
		switch os.Getenv("CHAOS_MODE") {
		case "freeze":
			mode = chaosproxy.Freeze
		case "refuse":
			mode = chaosproxy.Refuse
		case "accept-close":
			mode = chaosproxy.AcceptClose
		}
		// A link that goes silent (Freeze) is noticed only within the
		// watch's silence bound: a revocation made meanwhile may be
		// answered "not revoked" for that long, and no longer. A link
		// that breaks (Refuse, AcceptClose) is noticed as soon as the
		// watch's goroutine runs: a second covers a loaded machine.
		grace := time.Second
		if mode == chaosproxy.Freeze {
			grace = freezeGrace
		}
		checkers := make([]*staleCounter, len(w.bs))
		for i, b := range w.bs {
			checkers[i] = countStale(b, append(ids, sample(rng, all, 50)...), 2, grace, 50*time.Microsecond)
			for _, jti := range all {
				checkers[i].revoked.Store(jti, time.Time{})
			}
		}

		revokedAt := map[string]time.Time{}
		var lastRevoked time.Time
		classify(syncsBefore) // the previous round's recovery, noticed by now
		for i, b := range w.bs {
			syncsBefore[i] = b.Stats().WatchSyncs
		}
		cutAt := time.Now().UnixNano()
		for _, c := range checkers {
			c.cutAt.Store(cutAt)
		}
		for _, p := range w.proxies {
			if err := p.Set(mode); err != nil {
				t.Fatal(err)
			}
		}
		n.cuts++
		n.kinds[mode.String()+"/"+what]++

		// Damage, and revocations in the gap.
		revoke := func(ids []string) {
			for _, jti := range ids {
				for attempt := 0; ; attempt++ {
					err := w.a.Revoke(ctx, jti, exp)
					if err == nil {
						break
					}
					if attempt > 200 {
						t.Fatalf("A cannot revoke: %v", err)
					}
					time.Sleep(10 * time.Millisecond) // a restart in progress
				}
				now := time.Now()
				for _, c := range checkers {
					c.revoked.Store(jti, now)
				}
				if _, ok := revokedAt[jti]; !ok {
					revokedAt[jti] = now
				}
				lastRevoked = now
				n.revocations++
			}
		}
		half := len(ids) / 2
		revoke(ids[:half])
		switch what {
		case "delete":
			keys, err := w.streams(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range keys {
				if err := w.admin.Del(ctx, key).Err(); err != nil {
					t.Fatal(err)
				}
			}
		case "restart-keep":
			w.restart(t, true)
		case "restart-rollback":
			w.restart(t, false)
			// What the rollback forgot is not revoked in Redis either:
			// revoke it again, as a caller whose Revoke was lost would.
			revoke(ids[:half])
			revoke(all)
		}
		revoke(ids[half:])
		gap := time.Duration(rng.IntN(200)) * time.Millisecond
		if mode == chaosproxy.Freeze && rng.IntN(2) == 0 {
			gap = freezeGrace // long enough for the watch to notice
		}
		if v := os.Getenv("CHAOS_GAPMS"); v != "" {
			ms, _ := strconv.Atoi(v)
			gap = time.Duration(ms) * time.Millisecond
		}
		time.Sleep(gap)

		for _, p := range w.proxies {
			if err := p.Set(chaosproxy.Pass); err != nil {
				t.Fatal(err)
			}
		}
		healed := time.Now()
		all = append(all, ids...)
		// A few thousand checks right after the heal, while the watches
		// recover. A "not revoked" for an id revoked in this round's gap
		// is stale when B's watch had noticed the break before the check
		// began, or when the check began more than grace after the
		// Revoke; before the watch noticed, it is the watch's delay
		// (graced): a broken link is noticed as soon as the watch's
		// goroutine runs, and a check may run first.
		for i := 0; i < 2000; i++ {
			b, noticed := w.bs[i%len(w.bs)], w.noticed[i%len(w.bs)]
			jti := all[rng.IntN(len(all))]
			if i%4 == 0 {
				jti = ids[rng.IntN(len(ids))]
			}
			start := time.Now()
			unnoticed := noticed.at.Load() < cutAt
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			ok, err := b.IsRevoked(cctx, jti)
			cancel()
			n.checks++
			switch at, recent := revokedAt[jti]; {
			case err != nil:
				n.errs++
			case ok:
			case recent && unnoticed && start.Sub(at) < grace:
				n.graced++
			default:
				n.misses++
				when := "in an earlier round"
				if recent {
					when = start.Sub(at).Round(time.Microsecond).String() + " before the check"
				}
				t.Errorf("round %d (%s, %s): B %d answered \"not revoked\" for %q (revoked %s) %s after the heal, the break noticed: %v; Stats %+v",
					round, mode, what, i%len(w.bs), jti, when, start.Sub(healed).Round(time.Microsecond), !unnoticed, b.Stats())
			}
		}
		// A B whose watch has not noticed the break (a freeze shorter
		// than the silence bound, a cut healed before the watch's
		// goroutine ran) may still answer "not revoked" for this round's
		// revocations until grace after them, and only learns of a gap
		// (a stream deleted or trimmed meanwhile) at its next snapshot.
		// The next round and the final check judge every id with no
		// grace: wait until the watch noticed the break, or grace passed.
		for i, b := range w.bs {
			for w.noticed[i].at.Load() < cutAt && time.Now().Before(lastRevoked.Add(grace)) {
				time.Sleep(time.Millisecond)
			}
			waitLive(t, b)
		}
		for i, c := range checkers {
			c.finish()
			n.checks += c.checks.Load()
			n.errs += c.errs.Load()
			n.graced += c.graced.Load()
			if s := c.stale.Load(); s > 0 {
				n.misses += s
				t.Errorf("round %d (%s, %s): %d stale answers during the gap (first %v); Stats %+v", round, mode, what, s, c.firstStale.Load(), w.bs[i].Stats())
			}
		}
	}
	// Every revocation reached every B in the end.
	for bi, b := range w.bs {
		for _, jti := range all {
			if ok, err := b.IsRevoked(ctx, jti); err != nil || !ok {
				n.misses++
				aok, aerr := w.a.IsRevoked(ctx, jti)
				t.Errorf("after the chaos: B %d IsRevoked(%q) = %v, %v; A says %v, %v; B stats %+v", bi, jti, ok, err, aok, aerr, b.Stats())
			}
		}
	}
	classify(syncsBefore)
	t.Logf("chaos: %d cuts (%v); watch recoveries: %d resumed, %d synced (gaps); %d revocations; %d checks (%d errors); %d misses; %d \"not revoked\" answered before B noticed the cut (within %s of the revocation over a frozen link, 1s over a broken one); %s",
		n.cuts, n.kinds, n.resumed, n.synced, n.revocations, n.checks, n.errs, n.misses, n.graced, freezeGrace, time.Since(start).Round(time.Millisecond))
}

// sample returns up to k ids of all, at random.
func sample(rng *rand.Rand, all []string, k int) []string {
	if len(all) <= k {
		return append([]string(nil), all...)
	}
	out := make([]string, k)
	for i := range out {
		out[i] = all[rng.IntN(len(all))]
	}
	return out
}
