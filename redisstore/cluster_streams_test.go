package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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

// TestClusterShardDown is the second case of issue 19: one master dies
// (SIGKILL) while 8 goroutines revoke fresh ids under WithWait(1, 2s) and
// another client watches. Each master announces on its own stream, so:
//
//   - revocations whose keys live on the other masters never fail, and
//     reach the watch while the failed master is down (before its
//     replica is promoted), not only once it is back;
//   - every acknowledged revocation is delivered to the watch, or the
//     watch reports Synced after the kill (it could not prove its gap
//     empty, and its subscriber reloads).
//
// With "lagging", the failed master's replica is paused and its
// replication link closed a second before the kill, so the watch has read
// announcements the promoted replica never got: it must report Synced,
// never Resumed, for that stream. With "paused", the master is frozen
// (SIGSTOP) instead of killed: its connections stay open and silent.
func TestClusterShardDown(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"killed", "killed-lagging", "paused"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testClusterShardDown(t, mode == "killed-lagging", mode == "paused")
		})
	}
}

func testClusterShardDown(t *testing.T, lagging, pause bool) {
	cluster := testserver.RedisClusterWithReplicas(t, 3, 1)
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	writer := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(prefix),
		redisstore.WithWait(1, 2*time.Second))
	watcher := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(prefix))

	victim, err := cluster.MasterFor(ctx, prefix+"probe")
	if err != nil {
		t.Fatal(err)
	}
	replica, err := cluster.ReplicaOf(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: victim.Addr(), MaxRetries: -1})
	defer admin.Close()
	slots, err := admin.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	onVictim := func(id string) bool {
		slot := testserver.KeySlot(prefix + id)
		for _, r := range slots {
			if r.Start <= slot && slot <= r.End {
				return r.Nodes[0].Addr == victim.Addr()
			}
		}
		t.Fatalf("no master for slot %d", slot)
		return false
	}

	// The watch: when each revocation arrived, and the kinds of events.
	var (
		mu        sync.Mutex
		delivered = map[string]time.Time{}
		kinds     []string
		syncedAt  []time.Time
		backAt    []time.Time // Synced or Resumed
	)
	run := startWatch(ctx, watcher, func(ev blocklist.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case blocklist.Revoked:
			if _, ok := delivered[ev.JTI]; !ok {
				delivered[ev.JTI] = time.Now()
			}
		case blocklist.Synced:
			syncedAt = append(syncedAt, time.Now())
			backAt = append(backAt, time.Now())
			kinds = append(kinds, ev.Kind.String())
		case blocklist.Resumed:
			backAt = append(backAt, time.Now())
			fallthrough
		default:
			kinds = append(kinds, ev.Kind.String())
		}
	})
	defer run.stop()
	pollUntil(t, "Synced reported by the watch", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(syncedAt) > 0
	})
	if streams, err := watcher.Streams(ctx); err != nil || len(streams) != 3 {
		t.Fatalf("stream keys %q, %v; want one per master", streams, err)
	}

	type ack struct {
		id       string
		onVictim bool
		at       time.Time
	}
	var (
		acks            []ack // under mu
		failedElsewhere atomic.Int64
		firstElsewhere  atomic.Pointer[error]
		failedVictim    atomic.Int64
		seq             atomic.Int64
		stop            = make(chan struct{})
		writers         sync.WaitGroup
	)
	exp := time.Now().Add(time.Hour)
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
				id := fmt.Sprintf("w%d-%d", w, seq.Add(1))
				v := onVictim(id)
				if pause && v && w < 4 {
					// A call to a frozen master holds its caller until
					// the deadline: half the writers keep to the other
					// masters, so that their writes go on meanwhile.
					continue
				}
				callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := writer.Revoke(callCtx, id, exp)
				cancel()
				switch {
				case err == nil:
					mu.Lock()
					acks = append(acks, ack{id, v, time.Now()})
					mu.Unlock()
				case v:
					failedVictim.Add(1)
				default:
					failedElsewhere.Add(1)
					firstElsewhere.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		writers.Wait()
	})
	defer stopWriters()

	time.Sleep(time.Second)
	if lagging {
		if err := replica.Pause(); err != nil {
			t.Fatal(err)
		}
		if err := admin.ClientKillByFilter(ctx, "type", "replica").Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	kill := time.Now()
	stopVictim := victim.Kill
	if pause {
		stopVictim = victim.Pause
	}
	if err := stopVictim(); err != nil {
		t.Fatal(err)
	}
	if lagging {
		if err := replica.Resume(); err != nil {
			t.Fatal(err)
		}
	}
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr(), MaxRetries: -1})
	defer rc.Close()
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
	time.Sleep(500 * time.Millisecond)
	stopWriters()

	// The watch follows the failed master's stream to the promoted
	// replica: it is whole again (Resumed or Synced) soon after. A frozen
	// master costs more than a dead one: every attempt that still reaches
	// it (the stream's connection, go-redis's own reload of the slot map)
	// waits out its timeout instead of being refused at once.
	bound := resumeBound
	if pause {
		bound += 5 * time.Second
	}
	var back time.Time
	for deadline := time.Now().Add(resumeBound + 10*time.Second); back.IsZero() && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		if n := len(backAt); n > 0 && backAt[n-1].After(kill) {
			back = backAt[n-1]
		}
		mu.Unlock()
	}
	if back.IsZero() {
		t.Errorf("the watch did not report Resumed or Synced after the failover")
	} else if d := back.Sub(promoted); d > bound {
		t.Errorf("the watch was whole again %v after the promotion, want within %v", d, bound)
	}

	// Every acknowledged revocation on the other masters reaches the
	// watch; those of the failed master too, unless the watch reported
	// Synced after the kill.
	mu.Lock()
	all := append([]ack(nil), acks...)
	mu.Unlock()
	syncedAfterKill := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(syncedAt) > 0 && syncedAt[len(syncedAt)-1].After(kill)
	}
	missing := func() (elsewhere, victims []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range all {
			if _, ok := delivered[a.id]; ok {
				continue
			}
			if a.onVictim {
				victims = append(victims, a.id)
			} else {
				elsewhere = append(elsewhere, a.id)
			}
		}
		return elsewhere, victims
	}
	var elsewhere, victims []string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		elsewhere, victims = missing()
		if len(elsewhere) == 0 && (len(victims) == 0 || syncedAfterKill()) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}

	var ackedElsewhere, ackedVictim, duringOutage, ackedDuringOutage int
	mu.Lock()
	for _, a := range all {
		if a.onVictim {
			ackedVictim++
			continue
		}
		ackedElsewhere++
		if a.at.After(kill) && a.at.Before(promoted) {
			ackedDuringOutage++
			if at, ok := delivered[a.id]; ok && at.Before(promoted) {
				duringOutage++
			}
		}
	}
	events := strings.Join(kinds, " ")
	mu.Unlock()
	t.Logf("promotion %v after the kill, watch whole again %v after it; acknowledged %d elsewhere (%d during the outage, %d of them delivered during it), %d on the failed master; failed %d on the failed master, %d elsewhere; watch events: %s",
		promoted.Sub(kill).Round(time.Millisecond), back.Sub(promoted).Round(time.Millisecond), ackedElsewhere, ackedDuringOutage, duringOutage, ackedVictim,
		failedVictim.Load(), failedElsewhere.Load(), events)

	if n := failedElsewhere.Load(); n > 0 {
		t.Errorf("%d revocations on the other masters failed, first: %v", n, *firstElsewhere.Load())
	}
	if ackedElsewhere == 0 || ackedDuringOutage == 0 {
		t.Fatalf("no revocation on the other masters acknowledged (%d, %d during the outage)", ackedElsewhere, ackedDuringOutage)
	}
	if duringOutage == 0 {
		t.Errorf("none of the %d revocations on the other masters acknowledged during the outage reached the watch before the promotion", ackedDuringOutage)
	}
	if len(elsewhere) > 0 {
		t.Errorf("%d acknowledged revocations on the other masters never reached the watch, e.g. %q", len(elsewhere), elsewhere[0])
	}
	if len(victims) > 0 && !syncedAfterKill() {
		t.Errorf("%d acknowledged revocations on the failed master never reached the watch, e.g. %q, and the watch did not report Synced after the kill (events: %s)",
			len(victims), victims[0], events)
	}
	if !strings.Contains(events, "Lost") {
		t.Errorf("the watch did not report Lost when a master died (events: %s)", events)
	}
	if lagging && !syncedAfterKill() {
		// The watch read announcements from the old master that its
		// lagging replica never got: no proof can pass.
		t.Errorf("after a failover to a lagging replica the watch did not report Synced (events: %s)", events)
	}
}

// TestClusterStreamsReshard moves a master's lowest slot to another master
// (with its keys, the master's stream among them), as a resharding does:
// the master then announces on the stream of its next lowest slot, and the
// one receiving the slot on the moved stream. The watch notices the new set
// of streams, reports Lost and then Synced, and every revocation made after
// that Synced reaches it, on either master.
func TestClusterStreamsReshard(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisCluster(t, 3)
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	writer := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(prefix))
	watcher := redisstore.New(redistest.ClusterClient(t, cluster.Addrs()), redisstore.WithPrefix(prefix))
	exp := time.Now().Add(time.Hour)
	for i := range 30 {
		if err := writer.Revoke(ctx, fmt.Sprintf("before-%d", i), exp); err != nil {
			t.Fatal(err)
		}
	}
	before, err := watcher.Streams(ctx)
	if err != nil {
		t.Fatal(err)
	}

	w := watchEvents(t, ctx, watcher, 10_000, nil)
	defer w.stop()
	w.waitFor("Synced", isKind(blocklist.Synced), 15*time.Second)

	// Slot 0, the lowest of its master, goes to another master.
	source, err := cluster.MasterFor(ctx, "{3560}") // "3560" hashes to slot 0
	if err != nil {
		t.Fatal(err)
	}
	var target *testserver.Server
	for _, n := range cluster.Nodes {
		if n != source {
			target = n
			break
		}
	}
	keys, err := redistest.Client(t, source.Addr()).ClusterCountKeysInSlot(ctx, 0).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := moveSlot(ctx, cluster, 0, source, target); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()

	w.waitFor("Lost after the resharding", isKind(blocklist.Lost), 15*time.Second)
	w.waitFor("Synced after the resharding", isKind(blocklist.Synced), 15*time.Second)
	t.Logf("Lost and Synced %v after the slot moved (keys moved with it: %d)", time.Since(moved).Round(time.Millisecond), keys)
	after, err := watcher.Streams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(after, " ") == strings.Join(before, " ") {
		t.Fatalf("the stream keys did not change: %q", after)
	}

	// Every revocation made now reaches the watch, whichever master has
	// it; the first one on the master that took the slot, which has a new
	// stream while its old one is still there: a writer whose map of
	// streams is older than the resharding (it wrote nothing since) would
	// announce there, unseen, without any error.
	ids := make([]string, 60)
	for i := range ids {
		ids[i] = fmt.Sprintf("after-%d", i)
		if m, err := cluster.MasterFor(ctx, prefix+ids[i]); err == nil && m == target {
			ids[0], ids[i] = ids[i], ids[0]
		}
	}
	want := map[string]bool{}
	for _, id := range ids {
		if err := writer.Revoke(ctx, id, exp); err != nil {
			t.Fatal(err)
		}
		want[id] = true
	}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	for len(want) > 0 {
		select {
		case ev := <-w.C:
			if ev.Kind == blocklist.Lost || ev.Kind == blocklist.Synced {
				t.Errorf("%s after the watch followed the resharding", ev.Kind)
			}
			delete(want, ev.JTI)
		case <-timer.C:
			var missing []string
			for id := range want {
				st, _ := writer.StreamFor(ctx, id)
				missing = append(missing, id+" on "+st)
			}
			t.Fatalf("%d revocations made after the watch followed the resharding did not reach it within 15 s: %q (streams before %q, after %q)",
				len(want), missing, before, after)
		}
	}
}

// TestClusterRecipes follows the package documentation's Cluster recipes
// with redis-cli, as a service in another language would, computing the
// stream keys itself: a writer's MULTI/EXEC then XADD on the stream of the
// key's master reaches a watching Store; a reader finds, on each master's
// stream, the revocations of the keys that master holds.
func TestClusterRecipes(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisCluster(t, 3)
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	client := redistest.ClusterClient(t, cluster.Addrs())
	s := redisstore.New(client, redisstore.WithPrefix(prefix))

	// The recipe's table: T(slot), the smallest decimal integer whose hash
	// slot is slot.
	tag := make(map[int]int, 16384)
	for n := 0; len(tag) < 16384; n++ {
		if _, ok := tag[testserver.KeySlot(strconv.Itoa(n))]; !ok {
			tag[testserver.KeySlot(strconv.Itoa(n))] = n
		}
	}
	// Each master (by address) and its stream, from CLUSTER SHARDS.
	shards, err := client.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	streamOf := map[string]string{} // master address -> stream key
	masterOfSlot := func(slot int) string {
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if int(r.Start) <= slot && slot <= int(r.End) {
					for _, n := range sh.Nodes {
						if n.Role == "master" {
							return n.IP + ":" + strconv.Itoa(int(n.Port))
						}
					}
				}
			}
		}
		t.Fatalf("no master serves slot %d", slot)
		return ""
	}
	for _, sh := range shards {
		lowest := -1
		for _, r := range sh.Slots {
			if lowest < 0 || int(r.Start) < lowest {
				lowest = int(r.Start)
			}
		}
		for _, n := range sh.Nodes {
			if n.Role == "master" && lowest >= 0 {
				streamOf[n.IP+":"+strconv.Itoa(int(n.Port))] = "{" + strconv.Itoa(tag[lowest]) + "}" + prefix
			}
		}
	}
	if len(streamOf) != 3 {
		t.Fatalf("streams %v, want one per master", streamOf)
	}

	w := watchEvents(t, ctx, s, 100, nil)
	defer w.stop()
	waitFor := func(what string, ok func(blocklist.Event) bool) {
		t.Helper()
		w.waitFor(what, ok, 10*time.Second)
	}
	waitFor("Synced", isKind(blocklist.Synced))

	// The writer's recipe, on each master: a key it holds, then the XADD
	// on its stream, after the EXEC, on the same connection.
	exp := time.Now().Add(time.Hour).UnixMilli()
	written := map[string]string{} // id -> master
	for i := 0; len(written) < 3 && i < 1000; i++ {
		id := "cli-" + strconv.Itoa(i)
		master := masterOfSlot(testserver.KeySlot(prefix + id))
		if slices.Contains(slices.Collect(maps.Values(written)), master) {
			continue
		}
		written[id] = master
		redistest.CLI(t, master, fmt.Sprintf("MULTI\nPEXPIREAT \"%[1]s%[2]s\" %[3]d GT\nSET \"%[1]s%[2]s\" 1 PXAT %[3]d NX\nEXEC\nXADD \"%[4]s\" MAXLEN ~ 100000 * jti %[2]s exp %[3]d\n",
			prefix, id, exp, streamOf[master]))
	}
	// Revocations of different ids may come in any order.
	pending := maps.Clone(written)
	waitFor(fmt.Sprintf("the revocations written with redis-cli (%d)", len(written)), func(ev blocklist.Event) bool {
		if ev.Kind == blocklist.Revoked && ev.Exp.UnixMilli() == exp {
			delete(pending, ev.JTI)
		}
		return len(pending) == 0
	})
	for id := range written {
		if ok, err := s.IsRevoked(ctx, id); err != nil || !ok {
			t.Errorf("IsRevoked(%q) = %v, %v after the recipe", id, ok, err)
		}
	}

	// The reader's recipe: each master's stream holds the announcements of
	// the keys it holds, the Store's own included.
	for i := range 30 {
		if err := s.Revoke(ctx, "go-"+strconv.Itoa(i), time.UnixMilli(exp)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		id := "go-" + strconv.Itoa(i)
		master := masterOfSlot(testserver.KeySlot(prefix + id))
		out := redistest.CLI(t, master, fmt.Sprintf("XREVRANGE \"%s\" + - COUNT 200\n", streamOf[master]))
		if !strings.Contains(out, "\n"+id+"\n") {
			t.Errorf("the revocation of %s, whose key %s holds, is not on its stream %q:\n%s", id, master, streamOf[master], out)
		}
	}
}

// TestCheckServerClusterStreams: on a cluster CheckServer looks at every
// master's stream, and names the one trimmed shorter than
// WithStreamMaxLen.
func TestCheckServerClusterStreams(t *testing.T) {
	t.Parallel()
	cluster := testserver.RedisCluster(t, 3)
	client := redistest.ClusterClient(t, cluster.Addrs())
	ctx := t.Context()
	s := redisstore.New(client, redisstore.WithPrefix(redistest.Prefix(t)), redisstore.WithStreamMaxLen(1000))
	for i := range 60 {
		if err := s.Revoke(ctx, fmt.Sprint("id-", i), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	streams, err := s.Streams(ctx)
	if err != nil || len(streams) != 3 {
		t.Fatalf("stream keys %q, %v; want 3", streams, err)
	}
	for _, st := range streams {
		if !strings.HasPrefix(st, "{") || !strings.HasSuffix(st, "}"+s.Prefix()) {
			t.Errorf("stream key %q is not {<n>}%s", st, s.Prefix())
		}
		if n, err := client.XLen(ctx, st).Result(); err != nil || n == 0 {
			t.Fatalf("stream %q holds %d entries, %v; want some: 60 revocations spread over 3 masters", st, n, err)
		}
	}
	if err := s.CheckServer(ctx); errors.Is(err, redisstore.ErrStreamTooShort) {
		t.Fatalf("CheckServer before any trim: %v", err)
	}
	if err := client.XTrimMaxLen(ctx, streams[1], 1).Err(); err != nil {
		t.Fatal(err)
	}
	err = s.CheckServer(ctx)
	if !errors.Is(err, redisstore.ErrStreamTooShort) || !strings.Contains(err.Error(), streams[1]) ||
		strings.Contains(err.Error(), streams[0]) || strings.Contains(err.Error(), streams[2]) {
		t.Errorf("CheckServer with one master's stream trimmed: %v; want ErrStreamTooShort naming %q only", err, streams[1])
	}
}
