package blocklist_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		jti   string
		valid bool
	}{
		{"", false},
		{"a", true},
		{"\x00", true},
		{strings.Repeat("x", blocklist.MaxIDLen), true},
		{strings.Repeat("x", blocklist.MaxIDLen+1), false},
	} {
		err := blocklist.ValidateID(tc.jti)
		if (err == nil) != tc.valid || (err != nil && !errors.Is(err, blocklist.ErrInvalidID)) {
			t.Errorf("ValidateID(%d bytes) = %v, want valid=%v", len(tc.jti), err, tc.valid)
		}
	}
}

// expiryOnly hides every capability of the store it wraps but RevokedUntil,
// so RevokedUntilEach takes its one-id-at-a-time path.
type expiryOnly struct{ blocklist.ExpiryStore }

func TestRevokedUntilEachFallback(t *testing.T) {
	ms := memorystore.New()
	defer ms.Close()
	s := expiryOnly{ms}
	if _, ok := blocklist.ExpiryStore(s).(blocklist.BatchStore); ok {
		t.Fatal("the wrapper must not be a BatchStore")
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	if err := s.Revoke(ctx, "a", exp); err != nil {
		t.Fatal(err)
	}
	until := make([]time.Time, 3)
	if err := blocklist.RevokedUntilEach(ctx, s, []string{"a", "b", "a"}, until); err != nil {
		t.Fatal(err)
	}
	if !until[0].Equal(until[2]) || until[0].Before(exp.Truncate(time.Millisecond)) || !until[1].IsZero() {
		t.Errorf("until = %v, want [%v 0 %v]", until, exp, exp)
	}
	if err := blocklist.RevokedUntilEach(ctx, s, []string{"a", ""}, make([]time.Time, 2)); !errors.Is(err, blocklist.ErrInvalidID) {
		t.Errorf("an empty id: error = %v, want ErrInvalidID", err)
	}
	if err := blocklist.RevokedUntilEach(ctx, s, []string{"a"}, make([]time.Time, 2)); err == nil {
		t.Error("mismatched lengths: no error")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := blocklist.RevokedUntilEach(done, s, []string{"a"}, make([]time.Time, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled context: error = %v, want context.Canceled", err)
	}
}
