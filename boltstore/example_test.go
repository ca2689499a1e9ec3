package boltstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/jwtblocklist/blocklist/boltstore"
	bolt "go.etcd.io/bbolt"
)

func Example() {
	dir, err := os.MkdirTemp("", "boltstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := boltstore.Open(filepath.Join(dir, "blocklist.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()

	// On logout: revoke the token's id until the token's own exp. Revoke
	// returns once the revocation is on disk.
	exp := time.Now().Add(15 * time.Minute)
	if err := store.Revoke(ctx, "4f1c2e9a-jti", exp); err != nil {
		log.Fatal(err)
	}

	// On every request, after verifying the signature.
	for _, jti := range []string{"4f1c2e9a-jti", "another-jti"} {
		revoked, err := store.IsRevoked(ctx, jti)
		if err != nil {
			log.Fatal(err) // refuse the request: the token is not verified
		}
		fmt.Println(jti, "revoked:", revoked)
	}
	// Output:
	// 4f1c2e9a-jti revoked: true
	// another-jti revoked: false
}

// An application that already keeps its data in bbolt gives the Store its
// own *bbolt.DB; the blocklist lives in its own buckets beside the
// application's.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "boltstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := bolt.Open(filepath.Join(dir, "app.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // the application owns db: close it after the Store

	store, err := boltstore.New(db, boltstore.WithBucket("revoked-tokens"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // stops the sweeper; db stays open

	ctx := context.Background()
	if err := store.Revoke(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
	until, err := store.RevokedUntil(ctx, "jti-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("revoked for about", until.Sub(time.Now()).Round(time.Hour))
	// Output: revoked for about 1h0m0s
}
