package redisstore_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/chaosproxy"
	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// TestWatchRollbackBehindClock: the watch reads an announcement, its link
// is cut, and the stream goes back to an earlier state of the same
// incarnation (a failover to a replica that had not received it, marker
// group and counters included), on a server whose clock is behind: the
// next announcement there gets an id below the one the watch read last,
// and makes up the count the rollback took away. Reading on from its
// position, the watch would never see it; it must report Synced (or
// deliver it), never Resumed without it.
//
// "read": the link breaks while the watch delivers the entry, before a
// snapshot proved it. "proved": after the proof; the new master then also
// takes an entry with an id above the old last one, so the stream's last
// id is not behind the one proved either.
func TestWatchRollbackBehindClock(t *testing.T) {
	t.Parallel()
	for _, proved := range []bool{false, true} {
		name := map[bool]string{false: "read", true: "proved"}[proved]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testWatchRollbackBehindClock(t, proved)
		})
	}
}

func testWatchRollbackBehindClock(t *testing.T, proved bool) {
	srv := testserver.Redis(t)
	proxy := proxied(t, srv.Addr())
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	direct := redistest.Client(t, srv.Addr())
	writer := redisstore.New(direct, redisstore.WithPrefix(prefix))
	watcher := redisstore.New(redistest.Client(t, proxy.Addr()), redisstore.WithPrefix(prefix))
	exp := time.Now().Add(time.Hour)

	hold, release := make(chan struct{}), make(chan struct{})
	w := watchEvents(t, ctx, watcher, 100, func(ev blocklist.Event) {
		if ev.Kind == blocklist.Revoked && ev.JTI == "read-then-lost" && !proved {
			close(hold)
			<-release
		}
	})
	defer w.stop()
	next := func(what string, ok func(blocklist.Event) bool) blocklist.Event {
		t.Helper()
		ev, _ := w.waitFor(what, ok, 10*time.Second)
		return ev
	}
	next("Synced", func(ev blocklist.Event) bool { return ev.Kind == blocklist.Synced })
	for i := range 5 {
		if err := writer.Revoke(ctx, "before-"+strconv.Itoa(i), exp); err != nil {
			t.Fatal(err)
		}
	}
	next("the first revocations", func(ev blocklist.Event) bool { return ev.JTI == "before-4" })
	time.Sleep(watchProofPause) // a snapshot proves them
	// The state a lagging replica holds.
	dump, err := direct.Dump(ctx, prefix).Result()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if err := writer.Revoke(ctx, "read-then-lost", exp); err != nil {
		t.Fatal(err)
	}
	lost := next("the announcement the replica lacks", func(ev blocklist.Event) bool { return ev.JTI == "read-then-lost" })
	if proved {
		time.Sleep(watchProofPause)
	} else {
		<-hold
	}
	// While the watch delivers it (or once it proved it), its link breaks
	// and the stream rolls back; the new master's clock is behind the old
	// one's.
	if err := proxy.Set(chaosproxy.Refuse); err != nil {
		t.Fatal(err)
	}
	if err := direct.RestoreReplace(ctx, prefix, 0, dump).Err(); err != nil {
		t.Fatal(err)
	}
	behind := fmt.Sprintf("%d-%d", lost.Announced.UnixMilli()-1, 1<<40)
	ms := strconv.FormatInt(exp.UnixMilli(), 10)
	if err := direct.XAdd(ctx, &redis.XAddArgs{Stream: prefix, ID: behind, Values: []string{"jti", "behind", "exp", ms}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := direct.Set(ctx, prefix+"behind", "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if proved {
		// The clock caught up: an entry above the old last id.
		ahead := fmt.Sprintf("%d-0", lost.Announced.UnixMilli()+1)
		if err := direct.XAdd(ctx, &redis.XAddArgs{Stream: prefix, ID: ahead, Values: []string{"jti", "ahead", "exp", ms}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := proxy.Set(chaosproxy.Pass); err != nil {
		t.Fatal(err)
	}
	if !proved {
		close(release)
	}

	var kinds []string
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	resumed := false
	for {
		select {
		case ev := <-w.C:
			kinds = append(kinds, ev.Kind.String())
			switch {
			case ev.Kind == blocklist.Revoked && ev.JTI == "behind":
				return
			case ev.Kind == blocklist.Synced:
				return
			case ev.Kind == blocklist.Resumed:
				resumed = true
				timer.Reset(2 * time.Second)
			}
		case <-timer.C:
			t.Fatalf("the announcement made after the rollback, below the watch's position, was never delivered, and the watch stayed live; events since: %q (Resumed: %v)",
				strings.Join(kinds, " "), resumed)
		}
	}
}

// watchProofPause is longer than a watch takes to prove what it read (a
// blocking read of a quarter second, then a snapshot).
const watchProofPause = 600 * time.Millisecond
