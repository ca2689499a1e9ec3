package redisstore_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/redistest"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// TestFarFutureSaturates pins how exps beyond what Redis holds are stored:
// the key expires at math.MaxInt64 Unix milliseconds, the latest expiry
// PEXPIREAT and SET ... PXAT accept, and the announcement carries the same
// number; the key and its expiry survive a restart from the append-only
// file. Before saturation, time.Unix(18446744073709552, 0) wrapped to 384 ms
// after 1970 (an already expired key, Revoke returning nil) and exps between
// 9.22e15 s and that wrapped negative, which Redis refuses with "invalid
// expire time".
func TestFarFutureSaturates(t *testing.T) {
	t.Parallel()
	srv := testserver.Redis(t, "--appendonly", "yes", "--appendfsync", "always")
	client := redistest.Client(t, srv.Addr())
	ctx := t.Context()
	s := redisstore.New(client)
	exps := map[string]time.Time{
		"ms-limit":        time.UnixMilli(math.MaxInt64),
		"ms-limit+1ns":    time.UnixMilli(math.MaxInt64).Add(1),
		"negative-ms":     time.Unix(1e16, 0),
		"wraps-to-1970":   time.Unix(18446744073709552, 0),
		"2^62-seconds":    time.Unix(1<<62, 0),
		"ms-limit-1ms":    time.UnixMilli(math.MaxInt64 - 1),
		"latest-time":     time.Unix(math.MaxInt64-62135596800, 999_999_999),
		"once-wraps-1970": time.Unix(18446744073709552, 0),
	}
	want := map[string]int64{"ms-limit-1ms": math.MaxInt64 - 1}
	for name, exp := range exps {
		if name[:4] == "once" {
			if first, err := s.RevokeOnce(ctx, name, exp); err != nil || !first {
				t.Fatalf("RevokeOnce(%q, %s) = %v, %v; want true, nil", name, exp, first, err)
			}
			continue
		}
		if err := s.Revoke(ctx, name, exp); err != nil {
			t.Fatalf("Revoke(%q, %s): %v", name, exp, err)
		}
	}
	check := func(when string) {
		t.Helper()
		for name := range exps {
			key := redisstore.DefaultPrefix + name
			wantMS, ok := want[name]
			if !ok {
				wantMS = math.MaxInt64
			}
			if ms, err := client.Do(ctx, "pexpiretime", key).Int64(); err != nil || ms != wantMS {
				t.Errorf("%s: PEXPIRETIME %s = %d, %v; want %d", when, key, ms, err, wantMS)
			}
			if until, err := s.RevokedUntil(ctx, name); err != nil || !until.Equal(time.UnixMilli(wantMS)) {
				t.Errorf("%s: RevokedUntil(%q) = %s, %v; want %s", when, name, until, err, time.UnixMilli(wantMS))
			}
		}
	}
	check("after Revoke")

	// Every announcement carries the saturated expiry.
	entries, err := client.XRange(ctx, redisstore.DefaultPrefix, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(exps) {
		t.Errorf("%d announcements, want %d", len(entries), len(exps))
	}
	for _, e := range entries {
		jti, _ := e.Values["jti"].(string)
		wantMS, ok := want[jti]
		if !ok {
			wantMS = math.MaxInt64
		}
		if got := e.Values["exp"]; got != fmt.Sprint(wantMS) {
			t.Errorf("announcement of %q: exp %v, want %d", jti, got, wantMS)
		}
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a restart from the append-only file")
}
