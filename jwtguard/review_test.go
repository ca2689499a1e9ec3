package jwtguard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// fakeEnv is a sessionEnv on memorystore and a clock the test moves.
func fakeEnv(t *testing.T) *sessionEnv {
	e := &sessionEnv{fake: true, base: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	mem := memorystore.New(memorystore.WithClock(e.now))
	t.Cleanup(func() { mem.Close() })
	e.store = func(*testing.T) blocklist.Store { return mem }
	e.reader = mem
	return e
}

// Two copies of one refresh token (one jti) with different lifetimes: a
// replay within the grace period answered by a Guard whose RefreshTTL
// differs mints the successor again with another exp. The record of the
// first exchange of either copy must be read the same from the other copy:
// a replay of the short copy long after the long copy was exchanged is
// reuse, not a grace replay.
func TestReviewGraceCopiesOfDifferentLife(t *testing.T) {
	ctx := context.Background()
	e := fakeEnv(t)
	const grace = 10 * time.Second
	long := e.guard(t, jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: 24 * time.Hour, GracePeriod: grace}, 0)
	short := e.guard(t, jwtguard.Sessions{AccessTTL: time.Minute, RefreshTTL: time.Hour, GracePeriod: grace}, 0)

	p := newSession(t, long, "mallory")
	pLong, err := long.Refresh(ctx, p.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	pShort, err := short.Refresh(ctx, p.RefreshToken) // a replay within the window
	if err != nil {
		t.Fatal(err)
	}
	if pShort.RefreshExpiresAt.Equal(pLong.RefreshExpiresAt) {
		t.Fatal("the copies have the same exp; the test needs two lives")
	}
	// The long copy is exchanged, then the short one replayed well after
	// the window: reuse.
	e.advance(time.Second)
	if _, err := long.Refresh(ctx, pLong.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.advance(30 * time.Minute)
	if _, err := short.Refresh(ctx, pShort.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
		t.Errorf("short copy replayed 30 minutes after the long one's exchange: %v; want ErrRefreshReused", err)
	}

	// The other order: the short copy is exchanged, the long copy comes
	// after the short one's record would end (its life plus the pad): it
	// must not be a first exchange again.
	q := newSession(t, long, "mallory2")
	qLong, err := long.Refresh(ctx, q.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	qShort, err := short.Refresh(ctx, q.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.Refresh(ctx, qShort.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.advance(2 * time.Hour)
	if _, err := long.Refresh(ctx, qLong.RefreshToken); !errors.Is(err, jwtguard.ErrRefreshReused) {
		t.Errorf("long copy presented after the short copy's exchange: %v; want ErrRefreshReused", err)
	}
}
