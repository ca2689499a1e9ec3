package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// Two stores whose prefixes are prefixes of each other: "ovl:" revoking
// "x:" writes the key "ovl:x:", which is the stream key of the store with
// prefix "ovl:x:". That store's announcements then fail with
// ErrPrefixOverlap instead of going nowhere, and CheckServer reports it,
// standalone and on a cluster.
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
		testPrefixOverlap(t, redisstore.New(client, redisstore.WithPrefix("ovl:")), redisstore.New(client, redisstore.WithPrefix("ovl:x:")))
	})
}

func testPrefixOverlap(t *testing.T, outer, inner *redisstore.Store) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	if err := inner.CheckServer(ctx); errors.Is(err, redisstore.ErrPrefixOverlap) {
		t.Fatalf("CheckServer before any overlap: %v", err)
	}
	if err := outer.Revoke(ctx, "x:", exp); err != nil { // the key "ovl:x:"
		t.Fatal(err)
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
