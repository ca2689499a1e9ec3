package memcachestore

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist/internal/expiry"
	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// TestExpiration checks the expiration sent to memcached: seconds from now
// within 30 days, a Unix time beyond, none past 2038, and never before exp.
func TestExpiration(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 900_000_000, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		exp  time.Time
		want int64 // 0: no expiry
	}{
		{now.Add(time.Millisecond), 2},                         // exp in the next second: 12:00:01 + 1s of clock
		{now.Add(100 * time.Millisecond), 2},                   // exactly on the next second
		{now.Add(time.Second), 3},                              // 12:00:01.9 rounds up to :02, +1
		{now.Add(30*day - 2*time.Second), 30*86400 - 0},        // just within 30 days: relative
		{now.Add(30 * day), now.Add(30*day).Unix() + 1 + 3600}, // past 30 days: absolute, with slack
		{now.Add(90 * day), now.Add(90*day).Unix() + 1 + 3600},
		{time.Date(2038, 1, 19, 2, 14, 7, 0, time.UTC), math.MaxInt32},
		{time.Date(2038, 1, 19, 2, 14, 8, 0, time.UTC), 0},
		{time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), 0},
	} {
		got := expiration(expiry.CeilMillis(tc.exp), now)
		if int64(got) != tc.want {
			t.Errorf("expiration(%v) = %d, want %d", tc.exp, got, tc.want)
		}
		if got > 0 && got <= maxRelativeSeconds {
			// memcached's clock may stand up to a second behind now.
			if serverExpiry := now.Add(-time.Second).Add(time.Duration(got) * time.Second); serverExpiry.Before(tc.exp) {
				t.Errorf("expiration(%v) = %ds: memcached could drop it at %v", tc.exp, got, serverExpiry)
			}
		}
	}
}

func TestCeilMillis(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_123)
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{base, 1_700_000_000_123},
		{base.Add(time.Nanosecond), 1_700_000_000_124},
		{base.Add(999_999 * time.Nanosecond), 1_700_000_000_124},
		{time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 4_102_444_800_000},
		{time.UnixMilli(math.MaxInt64).Add(time.Nanosecond), maxExpMs},
		{time.Unix(math.MaxInt64-62135596800, 999_999_999), maxExpMs}, // the latest time.Time
	} {
		if got := expiry.CeilMillis(tc.t); got != tc.want {
			t.Errorf("expiry.CeilMillis(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

// TestEntriesOnServer looks at what memcached holds.
func TestEntriesOnServer(t *testing.T) {
	t.Parallel()
	client := testClient(testserver.Memcached(t).Addr())
	s := New(client)
	ctx := context.Background()

	// A foreign value under one of our keys is an error, not "not revoked".
	key, _ := makeKey(s.prefix, "foreign")
	if err := client.Set(&memcache.Item{Key: key, Value: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if revoked, err := s.IsRevoked(ctx, "foreign"); err == nil || !strings.HasPrefix(err.Error(), "memcachestore: ") {
		t.Errorf("IsRevoked over a foreign value = (%v, %v), want an error", revoked, err)
	}
	if err := s.Revoke(ctx, "foreign", time.Now().Add(time.Hour)); err == nil {
		t.Error("Revoke over a foreign value gave no error")
	}

	// Two long ids sharing a key (as if their SHA-256 collided) are told
	// apart by the id in the value.
	long := strings.Repeat("x", 300)
	other := long[:299] + "y"
	key, hashed := makeKey(s.prefix, long)
	if !hashed {
		t.Fatal("300-byte id not hashed")
	}
	exp := time.Now().Add(time.Hour)
	forged := &memcache.Item{Key: key, Flags: valueFlags, Value: encodeValue(expiry.CeilMillis(exp), other, true)}
	if err := client.Set(forged); err != nil {
		t.Fatal(err)
	}
	if revoked, err := s.IsRevoked(ctx, long); err != nil || revoked {
		t.Errorf("IsRevoked of an id whose key holds another id = (%v, %v), want (false, nil)", revoked, err)
	}
	if err := s.Revoke(ctx, long, exp); err == nil {
		t.Error("Revoke over another id's entry gave no error")
	}

	// A hashed id's value holds the whole id.
	id := strings.Repeat("h", 500)
	if err := s.Revoke(ctx, id, exp); err != nil {
		t.Fatal(err)
	}
	key, _ = makeKey(s.prefix, id)
	it, err := client.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if it.Flags != valueFlags || string(it.Value[expLen:]) != id {
		t.Errorf("hashed entry: flags %#x, value %q", it.Flags, it.Value)
	}
}

// TestLongTTLIsKept: a 90-day revocation must not be read by memcached as an
// absolute time in 1970 and dropped at once, and one past 2038 is kept too.
func TestLongTTLIsKept(t *testing.T) {
	t.Parallel()
	client := testClient(testserver.Memcached(t).Addr())
	s := New(client)
	ctx := context.Background()
	exps := []time.Time{
		time.Now().Add(90 * 24 * time.Hour),
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, exp := range exps {
		if err := s.Revoke(ctx, exp.String(), exp); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // past memcached's next clock tick
	for _, exp := range exps {
		key, _ := makeKey(s.prefix, exp.String())
		if _, err := client.Get(key); err != nil {
			t.Errorf("entry revoked until %v: raw get = %v", exp, err)
		}
	}
}

// testClient returns a client whose Timeout survives a loaded CI machine.
func testClient(addr string) *memcache.Client {
	c := memcache.New(addr)
	c.Timeout = 5 * time.Second
	return c
}
