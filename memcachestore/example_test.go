package memcachestore_test

import (
	"context"
	"log"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist/memcachestore"
)

// Revoke a token on logout, and refuse it on the next request. The example
// needs memcached on localhost:11211, so it is compiled but not run.
func Example() {
	client := memcache.New("localhost:11211") // or memcache.New(a, b, c) for several servers
	client.Timeout = 200 * time.Millisecond   // bounds every round trip: gomemcache takes no context
	client.MaxIdleConns = 64                  // at least your peak of concurrent requests
	defer client.Close()

	store := memcachestore.New(client, memcachestore.WithPrefix("myapp:revoked:"))
	ctx := context.Background()

	// On logout: the token's jti and exp claims.
	jti, exp := "550e8400-e29b-41d4-a716-446655440000", time.Now().Add(15*time.Minute)
	if err := store.Revoke(ctx, jti, exp); err != nil {
		log.Printf("logout failed, the token stays valid: %v", err)
		return
	}

	// On every request, after verifying the token's signature.
	revoked, err := store.IsRevoked(ctx, jti)
	if err != nil || revoked {
		log.Printf("refuse the token (revoked %v, err %v)", revoked, err)
		return
	}
	log.Print("accept the token")
}
