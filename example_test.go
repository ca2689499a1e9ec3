package blocklist_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// The whole flow: revoke a token's id on logout, until the token's own
// expiry, and refuse the token on every later request.
func Example() {
	var store blocklist.Store = memorystore.New()
	ctx := context.Background()

	// Logout: the token's jti and exp claims, taken from a verified token.
	jti, exp := "b7c2e0d4", time.Now().Add(15*time.Minute)
	if err := store.Revoke(ctx, jti, exp); err != nil {
		fmt.Println("logout failed:", err)
		return
	}

	// Every request, after the signature checks out:
	revoked, err := store.IsRevoked(ctx, jti)
	switch {
	case err != nil:
		fmt.Println("503: the blocklist cannot be consulted; fail closed")
	case revoked:
		fmt.Println("401: token revoked")
	default:
		fmt.Println("200")
	}
	// Output:
	// 401: token revoked
}

func ExampleValidateID() {
	for _, jti := range []string{"b7c2e0d4", "", strings.Repeat("x", blocklist.MaxIDLen+1)} {
		err := blocklist.ValidateID(jti)
		fmt.Println(len(jti), errors.Is(err, blocklist.ErrInvalidID))
	}
	// Output:
	// 8 false
	// 0 true
	// 1025 true
}
