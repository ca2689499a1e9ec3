package redisstore_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// Two stores whose prefixes are prefixes of each other: "ovl:" revoking
// "x:" writes the key "ovl:x:", which is the stream key of the store with
// prefix "ovl:x:". That store's announcements then fail with
// ErrPrefixOverlap instead of going nowhere, and CheckServer reports it,
// standalone and on a cluster. On a cluster each master's stream is
// "{<n>}" + prefix, which no key of "ovl:" can be: there it takes a store
// with the empty prefix (allowed without announcements) revoking the ids
// "{<n>}ovl:x:".
func TestPrefixOverlap(t *testing.T) {
	t.Parallel()
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		client := redistest.Client(t, testserver.Redis(t, durable...).Addr())
		testPrefixOverlap(t, redisstore.New(client, redisstore.WithPrefix("ovl:")), redisstore.New(client, redisstore.WithPrefix("ovl:x:")))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		client := redistest.ClusterClient(t, testserver.RedisCluster(t, 3).Addrs())
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		// Not an overlap on a cluster any more: "nov:x:" is no stream.
		if err := redisstore.New(client, redisstore.WithPrefix("nov:")).Revoke(ctx, "x:", exp); err != nil {
			t.Fatal(err)
		}
		if err := redisstore.New(client, redisstore.WithPrefix("nov:x:")).Revoke(ctx, "a", exp); err != nil {
			t.Errorf("Revoke with the key \"nov:x:\" taken on a cluster: %v", err)
		}
		inner := redisstore.New(client, redisstore.WithPrefix("ovl:x:"))
		streams, err := inner.Streams(ctx)
		if err != nil || len(streams) != 3 {
			t.Fatalf("stream keys: %q, %v; want 3", streams, err)
		}
		empty := redisstore.New(client, redisstore.WithPrefix(""), redisstore.WithoutEvents())
		testPrefixOverlap(t, empty, inner, streams...)
	})
}

// testPrefixOverlap revokes the ids overlap (by default "x:") through
// outer, making inner's stream keys strings.
func testPrefixOverlap(t *testing.T, outer, inner *redisstore.Store, overlap ...string) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := inner.CheckServer(ctx); errors.Is(err, redisstore.ErrPrefixOverlap) {
		t.Fatalf("CheckServer before any overlap: %v", err)
	}
	if len(overlap) == 0 {
		overlap = []string{"x:"} // the key "ovl:x:"
	}
	for _, id := range overlap {
		if err := outer.Revoke(ctx, id, exp); err != nil {
			t.Fatal(err)
		}
	}
	if err := inner.Revoke(ctx, "a", exp); !errors.Is(err, redisstore.ErrPrefixOverlap) {
		t.Errorf("Revoke on a prefix whose stream key holds another store's revocation: %v; want ErrPrefixOverlap", err)
	}
	if first, err := inner.RevokeOnce(ctx, "b", exp); first || !errors.Is(err, redisstore.ErrPrefixOverlap) {
		t.Errorf("RevokeOnce on a prefix whose stream key holds another store's revocation: %v, %v; want false, ErrPrefixOverlap", first, err)
	}
	if err := inner.CheckServer(ctx); !errors.Is(err, redisstore.ErrPrefixOverlap) {
		t.Errorf("CheckServer with the stream key holding a string: %v; want ErrPrefixOverlap", err)
	}
	if err := outer.CheckServer(ctx); errors.Is(err, redisstore.ErrPrefixOverlap) {
		t.Errorf("CheckServer of the outer store, whose own stream is fine: %v", err)
	}
}

// On a cluster each master's stream is "{<n>}" + prefix: with a prefix
// starting with "{", that key is also a revocation's key (the id "{<n>}"
// with the empty prefix), so New refuses such a prefix unless
// announcements are off. Standalone, the stream is the prefix itself,
// which no id's key can be. An empty prefix names no stream at all, so
// with announcements on New refuses it everywhere, rather than announce
// nothing in silence.
func TestClusterPrefixNeedsNoBrace(t *testing.T) {
	t.Parallel()
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	t.Cleanup(func() { cluster.Close() })
	single := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { single.Close() })
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { ring.Close() })
	refuses := func(client redis.UniversalClient, prefix string) {
		t.Helper()
		defer func() {
			if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "prefix") {
				t.Errorf("New(%T, WithPrefix(%q)) recovered %v, want a panic about the prefix", client, prefix, p)
			}
		}()
		redisstore.New(client, redisstore.WithPrefix(prefix))
	}
	for _, client := range []redis.UniversalClient{cluster, single, ring} {
		refuses(client, "")
		redisstore.New(client, redisstore.WithPrefix(""), redisstore.WithoutEvents())
	}
	for _, prefix := range []string{"{", "{tenant}:"} {
		refuses(cluster, prefix)
		redisstore.New(cluster, redisstore.WithPrefix(prefix), redisstore.WithoutEvents())
		redisstore.New(single, redisstore.WithPrefix(prefix))
		redisstore.New(ring, redisstore.WithPrefix(prefix))
	}
	redisstore.New(cluster, redisstore.WithPrefix("t{x}:")) // one slot for all, but no overlap
}

// The stream key of a master is "{T(s)}" + prefix, T(s) the smallest
// decimal integer whose hash slot is s, the master's lowest slot: check
// the table's rule for every slot, and the hash tag's effect.
func TestClusterStreamKeys(t *testing.T) {
	t.Parallel()
	// The smallest integer of each slot, from testserver's KeySlot (itself
	// checked against CLUSTER KEYSLOT).
	smallest := make(map[int]int, 16384)
	for n := 0; len(smallest) < 16384; n++ {
		if _, ok := smallest[testserver.KeySlot(strconv.Itoa(n))]; !ok {
			smallest[testserver.KeySlot(strconv.Itoa(n))] = n
		}
	}
	seen := make(map[string]bool)
	for slot := range 16384 {
		key := redisstore.ClusterStreamKey("p:", slot)
		if want := "{" + strconv.Itoa(smallest[slot]) + "}p:"; key != want {
			t.Fatalf("stream key of slot %d = %q, want %q", slot, key, want)
		}
		if got := testserver.KeySlot(key); got != slot {
			t.Fatalf("stream key %q of slot %d is on slot %d", key, slot, got)
		}
		if smallest[slot] >= 110_000 {
			t.Fatalf("stream key %q: tag of more than six digits", key)
		}
		if seen[key] {
			t.Fatalf("stream key %q twice", key)
		}
		seen[key] = true
		if redisstore.KeySlot(key) != slot {
			t.Fatalf("keySlot(%q) = %d, want %d", key, redisstore.KeySlot(key), slot)
		}
	}
}

// Streams names the stream keys of the public layout: the prefix on a
// single server, none without announcements (on a cluster one per master,
// see TestCheckServerClusterStreams).
func TestStreams(t *testing.T) {
	t.Parallel()
	client := redistest.Client(t, redisServer.Get(t).Addr())
	prefix := redistest.Prefix(t)
	if got, err := redisstore.New(client, redisstore.WithPrefix(prefix)).Streams(t.Context()); err != nil || len(got) != 1 || got[0] != prefix {
		t.Errorf("Streams() = %q, %v; want [%q]", got, err, prefix)
	}
	if got, err := redisstore.New(client, redisstore.WithoutEvents()).Streams(t.Context()); err != nil || len(got) != 0 {
		t.Errorf("Streams() without events = %q, %v; want none", got, err)
	}
}
