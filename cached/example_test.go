package cached_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func Example() {
	// In production the next Store is a shared one, such as
	// redisstore.New(client); memorystore keeps the example self-contained.
	backend := memorystore.New()
	defer backend.Close()

	store, err := cached.New(backend,
		cached.WithSize(100_000),            // tokens checked per NegativeTTL window, with room to spare
		cached.WithNegativeTTL(time.Second), // another instance's logout is seen here within 1s
		cached.WithoutWatch(),               // the plain cache; over a watched Store the output depends on when the watch goes live
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// On logout: written through to the backend, then seen here at once.
	if err := store.Revoke(ctx, "token-1", time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}

	// On every request, after the signature is verified.
	for _, jti := range []string{"token-1", "token-2", "token-2"} {
		revoked, err := store.IsRevoked(ctx, jti)
		if err != nil {
			fmt.Println(jti, "cannot be checked: refuse it") // fail closed
			continue
		}
		fmt.Println(jti, "revoked:", revoked)
	}

	st := store.Stats()
	fmt.Printf("hits %d, misses %d, backend calls %d\n", st.Hits, st.Misses, st.BackendCalls)
	// Output:
	// token-1 revoked: true
	// token-2 revoked: false
	// token-2 revoked: false
	// hits 2, misses 1, backend calls 1
}
