package memorystore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jwtblocklist/blocklist/memorystore"
)

func Example() {
	s := memorystore.New()
	defer s.Close()
	ctx := context.Background()

	// On logout: revoke the token's id until the token's own expiry.
	exp := time.Now().Add(15 * time.Minute)
	if err := s.Revoke(ctx, "3f2c9a7e", exp); err != nil {
		fmt.Println("revoke:", err)
		return
	}

	// On every request, after verifying the signature:
	revoked, err := s.IsRevoked(ctx, "3f2c9a7e")
	fmt.Println(revoked, err)
	revoked, err = s.IsRevoked(ctx, "another-token")
	fmt.Println(revoked, err)
	// Output:
	// true <nil>
	// false <nil>
}
