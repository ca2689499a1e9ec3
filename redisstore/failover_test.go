package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// resumeBound is how long after its replica's promotion a call to a failed
// master's slots may still start and go to the dead master through a
// default ClusterClient: the package documents about half a second (the
// Store reloads the slot map every 200 ms while calls fail); the rest is
// slack for a loaded machine.
const resumeBound = 3 * time.Second

// failoverResult counts what the writers saw. Times are from the kill.
type failoverResult struct {
	acked, ackedVictim    int // Revoke returned nil: overall, on the victim's slots
	notReplicated, failed int // errors on the victim's slots
	failedElsewhere       int // errors on the other masters' slots
	firstElsewhereErr     error
	lost                  int // acknowledged, and not revoked after the failover
	// promoted: the replica reports role:master. reached: the first call
	// started after the kill that the new master answered (nil or
	// ErrNotReplicated), i.e. the client follows the new slot map.
	// rejoined: the old master, restarted, is in sync as the new master's
	// replica. resumed: the first call started after the kill that
	// returned nil.
	promoted, reached, rejoined, resumed time.Duration
	// lastFailedStart: the start of the last call to the failed master's
	// slots that failed without reaching a live master; every call
	// started later reached the new master.
	lastFailedStart time.Duration
}

func (r failoverResult) String() string {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return fmt.Sprintf("acknowledged %d (%d on the failed master's slots), lost %d; on the failed master's slots %d not replicated, %d failed; %d failed elsewhere; after the kill: promotion %s, last failing call started %s (%s after the promotion), first answer of the new master %s, old master rejoined %s, first acknowledged write %s",
		r.acked, r.ackedVictim, r.lost, r.notReplicated, r.failed, r.failedElsewhere,
		ms(r.promoted), ms(r.lastFailedStart), ms(r.lastFailedStart-r.promoted), ms(r.reached), ms(r.rejoined), ms(r.resumed))
}

// runFailover runs the scenario of a master dying while its replica lags:
// 8 goroutines revoke fresh ids through a default ClusterClient; after a
// second the busiest master loses its
// replica (paused, and its replication link closed, as a partition
// would: a paused replica alone would catch up from its socket buffer);
// 3 s later the master is SIGKILLed and the replica resumed, so it is
// promoted with only what it had received. Once it is promoted the old
// master is restarted, as a supervisor would, and rejoins as its replica.
// The writers go on until a write to the failed slots has been
// acknowledged, then every acknowledged revocation is checked.
func runFailover(t *testing.T, opts ...redisstore.Option) failoverResult {
	cluster := testserver.RedisClusterWithReplicas(t, 3, 1)
	client := redistest.ClusterClient(t, cluster.Addrs())
	ctx := t.Context()
	prefix := "failover:"
	s := redisstore.New(client, append([]redisstore.Option{redisstore.WithPrefix(prefix)}, opts...)...)
	exp := time.Now().Add(time.Hour)

	// The slot map at the start: which master each key's slot belongs to.
	slots, err := client.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	masterOf := func(key string) string {
		slot := testserver.KeySlot(key)
		for _, r := range slots {
			if r.Start <= slot && slot <= r.End {
				return r.Nodes[0].Addr
			}
		}
		t.Fatalf("no master for slot %d", slot)
		return ""
	}

	var (
		mu         sync.Mutex
		acked      []string
		perMaster  = map[string]int{}
		victim     atomic.Pointer[string] // set once the victim is chosen
		killedAt   atomic.Int64           // unix ns
		resumedAt  atomic.Int64
		res        failoverResult
		stop       = make(chan struct{})
		writers    sync.WaitGroup
		idSequence atomic.Int64
		reachedAt  int64 // under mu
		// lastFailedStart is when the last call to the victim's slots
		// that did not reach a live master started; under mu.
		lastFailedStart int64
	)
	for w := range 8 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, idSequence.Add(1))
				master := masterOf(prefix + id)
				callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				started := time.Now().UnixNano()
				err := s.Revoke(callCtx, id, exp)
				cancel()
				now := time.Now().UnixNano()
				v := victim.Load()
				onVictim := v != nil && *v == master
				afterKill := killedAt.Load() != 0 && started > killedAt.Load()
				mu.Lock()
				if onVictim && afterKill {
					if err == nil || errors.Is(err, redisstore.ErrNotReplicated) {
						if reachedAt == 0 {
							reachedAt = now
						}
					} else {
						lastFailedStart = max(lastFailedStart, started)
					}
				}
				switch {
				case err == nil:
					acked = append(acked, id)
					res.acked++
					perMaster[master]++
					if onVictim {
						res.ackedVictim++
						if afterKill && resumedAt.Load() == 0 {
							resumedAt.Store(now)
						}
					}
				case onVictim && errors.Is(err, redisstore.ErrNotReplicated):
					res.notReplicated++
				case onVictim:
					res.failed++
				default:
					res.failedElsewhere++
					if res.firstElsewhereErr == nil {
						res.firstElsewhereErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		writers.Wait()
	}
	defer stopWriters()

	// A second of writes, longer if the machine is so loaded that no
	// write has been acknowledged yet.
	var busiest string
	for start := time.Now(); busiest == "" || time.Since(start) < time.Second; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 20*time.Second {
			t.Fatal("no revocation acknowledged in 20 s")
		}
		mu.Lock()
		busiest = ""
		for m, n := range perMaster {
			if busiest == "" || n > perMaster[busiest] {
				busiest = m
			}
		}
		mu.Unlock()
	}
	var master *testserver.Server
	for _, n := range cluster.Nodes {
		if n.Addr() == busiest {
			master = n
		}
	}
	if master == nil {
		t.Fatalf("no master at %q", busiest)
	}
	replica, err := cluster.ReplicaOf(ctx, master)
	if err != nil {
		t.Fatal(err)
	}

	victim.Store(&busiest)
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	mc := redis.NewClient(&redis.Options{Addr: master.Addr()})
	defer mc.Close()
	if err := mc.ClientKillByFilter(ctx, "type", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	// Long enough for writes to the lagging master to wait out a WithWait
	// timeout of two seconds before the kill.
	time.Sleep(3 * time.Second)
	kill := time.Now()
	killedAt.Store(kill.UnixNano())
	if err := master.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}

	// Watch the replica take over.
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr(), MaxRetries: -1})
	defer rc.Close()
	for {
		info, err := rc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "role:master") {
			res.promoted = time.Since(kill)
			break
		}
		if time.Since(kill) > 20*time.Second {
			t.Fatalf("replica %s not promoted 20 s after its master was killed", replica.Addr())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The old master comes back, and follows the new one.
	if err := master.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		info, err := mc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
			res.rejoined = time.Since(kill)
			break
		}
		if time.Since(kill) > 30*time.Second {
			t.Fatalf("the old master did not rejoin as a replica 30 s after the kill: %v\n%s", err, info)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Keep writing until a write to the failed slots is acknowledged.
	for resumedAt.Load() == 0 && time.Since(kill) < res.rejoined+resumeBound+5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	stopWriters()
	if r := resumedAt.Load(); r != 0 {
		res.resumed = time.Duration(r - kill.UnixNano())
	}
	if reachedAt != 0 {
		res.reached = time.Duration(reachedAt - kill.UnixNano())
	}
	if lastFailedStart != 0 {
		res.lastFailedStart = time.Duration(lastFailedStart - kill.UnixNano())
	}

	// Every acknowledged revocation must have survived.
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := cluster.WaitOK(waitCtx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(acked); i += 500 {
		batch := acked[i:min(i+500, len(acked))]
		until := make([]time.Time, len(batch))
		for {
			err := s.RevokedUntilEach(ctx, batch, until)
			if err == nil {
				break
			}
			if waitCtx.Err() != nil {
				t.Fatalf("reading the acknowledged revocations back: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for _, u := range until {
			if u.IsZero() {
				res.lost++
			}
		}
	}
	return res
}

// TestClusterFailoverWithWait is the failover of issue 19: with
// WithWait(1, …), no acknowledged revocation is lost when a master dies
// while its replica lags; writes to the other masters never fail; the new
// master is reached within resumeBound of its promotion, with a default
// ClusterClient (it answers ErrNotReplicated while it has no replica), and
// writes are acknowledged again once the old master rejoins as its
// replica.
func TestClusterFailoverWithWait(t *testing.T) {
	t.Parallel()
	// Two seconds: generous, so that on a loaded machine the healthy
	// replicas always acknowledge in time.
	res := runFailover(t, redisstore.WithWait(1, 2*time.Second))
	t.Logf("with WithWait(1, 2s): %v", res)
	if res.lost != 0 {
		t.Errorf("%d of %d acknowledged revocations lost in the failover", res.lost, res.acked)
	}
	if res.notReplicated == 0 {
		t.Errorf("no write to the lagging master reported ErrNotReplicated: the replica did not lag, the test proves nothing")
	}
	checkFailover(t, res)
}

// TestClusterFailoverWithoutWait runs the same failover without WithWait:
// acknowledged revocations the replica had not received are lost (the
// count is logged, the measurement behind WithWait), and writes reach the
// new master within resumeBound of its promotion.
func TestClusterFailoverWithoutWait(t *testing.T) {
	t.Parallel()
	res := runFailover(t)
	t.Logf("without WithWait: %v", res)
	if res.lost == 0 {
		t.Logf("no acknowledged revocation was lost: the replica did not lag")
	}
	checkFailover(t, res)
}

func checkFailover(t *testing.T, res failoverResult) {
	t.Helper()
	if res.failedElsewhere != 0 {
		t.Errorf("%d revocations to the healthy masters failed, first: %v", res.failedElsewhere, res.firstElsewhereErr)
	}
	switch {
	case res.reached == 0:
		t.Errorf("no write to the failed master's slots reached the new master")
	case res.lastFailedStart-res.promoted > resumeBound:
		t.Errorf("a write to the failed master's slots started %v after the promotion still failed, want every one after %v to reach the new master",
			res.lastFailedStart-res.promoted, resumeBound)
	}
	if res.resumed == 0 {
		t.Errorf("no write to the failed master's slots was acknowledged after the old master rejoined")
	}
}

// TestClusterWatchFollowsFailover: a watch whose own Store makes no call
// follows its stream to the replica promoted when the stream's master is
// killed, within resumeBound of the promotion, and delivers what is
// revoked there afterwards. Nothing else in its process fails, so nothing
// else would make its client reload the slot map.
func TestClusterWatchFollowsFailover(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisClusterWithReplicas(t, 3, 1)
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	watcher := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(prefix))
	revoker := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(prefix),
		redisstore.WithWait(1, 2*time.Second))
	exp := time.Now().Add(time.Hour)
	if err := revoker.Revoke(ctx, "before", exp); err != nil {
		t.Fatal(err)
	}

	w := watchEvents(t, ctx, watcher, 1000, nil)
	defer w.stop()
	wait := func(what string, ok func(blocklist.Event) bool, within time.Duration) time.Time {
		t.Helper()
		_, at := w.waitFor(what, ok, within)
		return at
	}
	wait("Synced", isKind(blocklist.Synced), 10*time.Second)

	master, err := cluster.MasterFor(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := cluster.ReplicaOf(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	kill := time.Now()
	if err := master.Kill(); err != nil {
		t.Fatal(err)
	}
	wait("Lost", isKind(blocklist.Lost), 5*time.Second)
	rc := redistest.Client(t, replica.Addr())
	var promoted time.Time
	for {
		if info, err := rc.Info(ctx, "replication").Result(); err == nil && strings.Contains(info, "role:master") {
			promoted = time.Now()
			break
		}
		if time.Since(kill) > 20*time.Second {
			t.Fatal("replica not promoted 20 s after the kill")
		}
		time.Sleep(5 * time.Millisecond)
	}
	back := wait("Resumed or Synced", func(e blocklist.Event) bool {
		return e.Kind == blocklist.Resumed || e.Kind == blocklist.Synced
	}, resumeBound+5*time.Second)
	t.Logf("promotion %v after the kill, watch back %v after the promotion", promoted.Sub(kill).Round(time.Millisecond), back.Sub(promoted).Round(time.Millisecond))
	if d := back.Sub(promoted); d > resumeBound {
		t.Errorf("the watch came back %v after the promotion, want within %v", d, resumeBound)
	}
	// The old master comes back as a replica, so writes are acknowledged.
	if err := master.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := revoker.Revoke(ctx, "after", exp)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Revoke after the failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wait(`Revoked "after"`, func(e blocklist.Event) bool { return e.Kind == blocklist.Revoked && e.JTI == "after" }, 10*time.Second)
}
