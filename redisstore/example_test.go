package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/jwtblocklist/blocklist/redisstore"
	"github.com/redis/go-redis/v9"
)

// Wiring the store to a standalone Redis: revoke a token on logout, check
// it on every request. (It needs a Redis server on localhost:6379, so it is
// compiled but not run by go test.)
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr: "localhost:6379",
		// Let each request's context deadline bound the round trip.
		ContextTimeoutEnabled: true,
	})
	defer client.Close() // the caller owns the client
	store := redisstore.New(client)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	// On logout: the token's jti and exp claims. The key blocklist:<jti>
	// now expires in Redis exactly when the token would have.
	if err := store.Revoke(ctx, "8f2c7d1e-logout-me", time.Now().Add(15*time.Minute)); err != nil {
		log.Fatal(err)
	}

	// On every request, after verifying the token's signature:
	revoked, err := store.IsRevoked(ctx, "8f2c7d1e-logout-me")
	if err != nil {
		// Redis could not answer: fail closed, treat the token as not verified.
		log.Fatal(err)
	}
	fmt.Println("revoked:", revoked)
}

// Wiring the store to a Redis Cluster: the same store over a ClusterClient.
// Every call touches one key, routed to the master that owns its slot.
// (Compiled, not run: it needs a cluster.)
func Example_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	store := redisstore.New(client)

	ctx := context.Background()
	if err := store.Revoke(ctx, "8f2c7d1e-logout-me", time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
	until, err := store.RevokedUntil(ctx, "8f2c7d1e-logout-me")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("revoked until", until)
}

// Two services keep separate blocklists in one Redis by prefix. The keys
// are "auth:revoked:" + jti and "billing:revoked:" + jti.
func ExampleWithPrefix() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()

	auth := redisstore.New(client, redisstore.WithPrefix("auth:revoked:"))
	billing := redisstore.New(client, redisstore.WithPrefix("billing:revoked:"))
	_, _ = auth, billing
}

// A Cluster whose masters each have a replica: a Revoke that returns nil
// has reached the replica too, so a failover keeps it. (It needs a cluster,
// so it is compiled but not run by go test.)
func ExampleWithWait() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	store := redisstore.New(client, redisstore.WithWait(1, 100*time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := store.Revoke(ctx, "8f2c7d1e-logout-me", time.Now().Add(15*time.Minute))
	switch {
	case errors.Is(err, redisstore.ErrNotReplicated):
		// Stored on the master, not yet on a replica: a failover now could
		// lose it. Retry, or answer the logout with an error.
		log.Print(err)
	case err != nil:
		log.Print(err)
	}
}

// At start, a service checks that the Redis behind its blocklist cannot
// forget revocations, and decides what it tolerates: here an evicting
// server is fatal, while persistence that may lose the last revocations in
// a crash is only logged. (Compiled, not run: it needs a server.)
func ExampleStore_CheckServer() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	store := redisstore.New(client)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := store.CheckServer(ctx)
	switch {
	case err == nil:
	case errors.Is(err, redisstore.ErrEviction), errors.Is(err, redisstore.ErrStreamTooShort),
		errors.Is(err, redisstore.ErrServerVersion):
		log.Fatalf("the blocklist's Redis can lose revocations while it runs: %v", err)
	case errors.Is(err, redisstore.ErrNotDurable):
		log.Printf("warning: %v", err)
	default:
		log.Fatalf("cannot check the blocklist's Redis: %v", err)
	}
}
