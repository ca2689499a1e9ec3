package memcachestore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/memcachestore"
)

// prefixes gives every store of a shared server its own namespace.
var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }

// downClient returns a client whose only servers have been killed.
func downClient(t *testing.T, n int) *memcache.Client {
	addrs := make([]string, n)
	for i := range addrs {
		srv := testserver.Memcached(t)
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		addrs[i] = srv.Addr()
	}
	return memcache.New(addrs...)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	client := newClient(testserver.Memcached(t).Addr())
	down := downClient(t, 1)
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return memcachestore.New(client, memcachestore.WithPrefix(newPrefix()))
	}, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
		return memcachestore.New(down)
	}))
}

// TestConformanceTwoServers runs the suite with ids spread over two servers
// behind one client.
func TestConformanceTwoServers(t *testing.T) {
	t.Parallel()
	a, b := testserver.Memcached(t), testserver.Memcached(t)
	client := newClient(a.Addr(), b.Addr())
	down := downClient(t, 2)
	t.Cleanup(func() { // after the parallel subtests, before the servers stop
		for _, srv := range []*testserver.Server{a, b} {
			if n := currItems(t, srv.Addr()); n == 0 {
				t.Errorf("server %s holds no entries: ids were not spread", srv.Addr())
			}
		}
	})
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		return memcachestore.New(client, memcachestore.WithPrefix(newPrefix()))
	}, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
		return memcachestore.New(down)
	}))

}

// currItems reads curr_items from the stats of one server.
func currItems(t *testing.T, addr string) int {
	t.Helper()
	return statValue(t, addr, "curr_items")
}

// wantFailure checks that err is a wrapped backend failure, not a miss and
// not an invalid id.
func wantFailure(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error", what)
	case errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, blocklist.ErrInvalidID):
		t.Errorf("%s: error %v is not a backend failure", what, err)
	case !strings.HasPrefix(err.Error(), "memcachestore: "):
		t.Errorf("%s: error %q does not name the package", what, err)
	}
}

// TestServerKilled kills the server under a store and brings it back.
func TestServerKilled(t *testing.T) {
	t.Parallel()
	srv := testserver.Memcached(t)
	client := newClient(srv.Addr())
	s := memcachestore.New(client)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)

	if err := s.Revoke(ctx, "before", exp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	revoked, err := s.IsRevoked(ctx, "before")
	wantFailure(t, "IsRevoked with the server killed", err)
	if revoked {
		t.Error("IsRevoked with the server killed = true")
	}
	_, err = s.RevokedUntil(ctx, "before")
	wantFailure(t, "RevokedUntil with the server killed", err)
	wantFailure(t, "Revoke with the server killed", s.Revoke(ctx, "during", exp))

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	// The store works again, with no new client: gomemcache redials.
	if err := s.Revoke(ctx, "after", exp); err != nil {
		t.Fatalf("Revoke after restart: %v", err)
	}
	if revoked, err := s.IsRevoked(ctx, "after"); err != nil || !revoked {
		t.Fatalf("IsRevoked after restart = (%v, %v), want (true, nil)", revoked, err)
	}
	// The truth about memcached: the restart forgot the earlier revocation.
	if revoked, err := s.IsRevoked(ctx, "before"); err != nil || revoked {
		t.Fatalf("IsRevoked of a revocation made before the restart = (%v, %v); memcached keeps nothing across restarts, so want (false, nil)", revoked, err)
	}
}

// TestOneOfTwoServersKilled: ids on the live server still answer, ids on the
// dead one fail, and none of them reads as "not revoked".
func TestOneOfTwoServersKilled(t *testing.T) {
	t.Parallel()
	a, b := testserver.Memcached(t), testserver.Memcached(t)
	s := memcachestore.New(newClient(a.Addr(), b.Addr()))
	ctx := context.Background()
	const n = 40
	for i := range n {
		if err := s.Revoke(ctx, fmt.Sprint("id-", i), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Kill(); err != nil {
		t.Fatal(err)
	}
	var ok, failed int
	for i := range n {
		revoked, err := s.IsRevoked(ctx, fmt.Sprint("id-", i))
		switch {
		case err != nil:
			wantFailure(t, "IsRevoked on the dead server", err)
			failed++
		case !revoked:
			t.Errorf("IsRevoked(id-%d) = (false, nil) with one server dead", i)
		default:
			ok++
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("%d ids answered and %d failed, want some of each", ok, failed)
	}
}

// TestPrefixes checks that stores with different prefixes on one server never
// see each other's revocations, including prefixes built to collide with
// another prefix's keys.
func TestPrefixes(t *testing.T) {
	t.Parallel()
	client := newClient(testserver.Memcached(t).Addr())
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	// Each pair would share a key if prefix and id were simply concatenated.
	pairs := []struct{ prefixA, idA, prefixB, idB string }{
		{"app:", "x=y", "app:=x", "y"},
		{"app:", "%3Dx=y", "app:%3Dx", "y"},
		{"app", ":x", "app:", "x"},
		{"", "app:x", "app:", "x"},
		{"a b", "c", "a%20b", "c"},
		{"p#", "q", "p", "#q"},
		{"p", "#" + strings.Repeat("h", 300), "p#", strings.Repeat("h", 300)},
		{"long:", strings.Repeat("L", 400), "long:=", strings.Repeat("L", 400)},
	}
	for _, p := range pairs {
		a := memcachestore.New(client, memcachestore.WithPrefix(p.prefixA))
		b := memcachestore.New(client, memcachestore.WithPrefix(p.prefixB))
		if err := a.Revoke(ctx, p.idA, exp); err != nil {
			t.Fatal(err)
		}
		if revoked, err := b.IsRevoked(ctx, p.idB); err != nil || revoked {
			t.Errorf("prefix %q id %q revoked; prefix %q sees id %q as (%v, %v), want (false, nil)", p.prefixA, p.idA, p.prefixB, p.idB, revoked, err)
		}
		if revoked, err := b.IsRevoked(ctx, p.idA); err != nil || revoked {
			t.Errorf("prefix %q id %q revoked; prefix %q sees it as (%v, %v)", p.prefixA, p.idA, p.prefixB, revoked, err)
		}
		if revoked, err := a.IsRevoked(ctx, p.idA); err != nil || !revoked {
			t.Errorf("prefix %q id %q: IsRevoked = (%v, %v) after Revoke", p.prefixA, p.idA, revoked, err)
		}
	}

	// The default prefix is DefaultPrefix.
	if err := memcachestore.New(client).Revoke(ctx, "default", exp); err != nil {
		t.Fatal(err)
	}
	same := memcachestore.New(client, memcachestore.WithPrefix(memcachestore.DefaultPrefix))
	if revoked, err := same.IsRevoked(ctx, "default"); err != nil || !revoked {
		t.Errorf("WithPrefix(DefaultPrefix) does not see the default store's revocation: (%v, %v)", revoked, err)
	}
}

// TestNewPanics: a nil client or an overlong prefix is a programming error,
// reported by New, never a Store whose every call fails.
func TestNewPanics(t *testing.T) {
	t.Parallel()
	client := memcache.New("127.0.0.1:1") // never contacted
	for name, newStore := range map[string]func(){
		"nil client":          func() { memcachestore.New(nil) },
		"long prefix":         func() { memcachestore.New(client, memcachestore.WithPrefix(strings.Repeat("p", 207))) },
		"long escaped prefix": func() { memcachestore.New(client, memcachestore.WithPrefix(strings.Repeat(" ", 69))) },
	} {
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(fmt.Sprint(p), "memcachestore: New: ") {
					t.Errorf("%s: New recovered %v, want a panic saying what is wrong", name, p)
				}
			}()
			newStore()
		}()
	}
	// The longest usable prefix works (nothing is sent: the id is invalid).
	s := memcachestore.New(client, memcachestore.WithPrefix(strings.Repeat("p", 206)))
	if _, err := s.IsRevoked(context.Background(), ""); !errors.Is(err, blocklist.ErrInvalidID) {
		t.Errorf("206-byte prefix: IsRevoked(\"\") = %v, want ErrInvalidID", err)
	}
}

// TestHungServerDeadline: a server that accepts connections but never
// answers is bounded by the context's deadline when it is sooner than the
// client's Timeout.
func TestHungServerDeadline(t *testing.T) {
	t.Parallel()
	srv := testserver.Memcached(t)
	client := memcache.New(srv.Addr())
	client.Timeout = 5 * time.Second
	s := memcachestore.New(client)
	stop(t, srv) // resumed at cleanup

	for name, call := range map[string]func(context.Context) error{
		"IsRevoked": func(ctx context.Context) error { _, err := s.IsRevoked(ctx, "x"); return err },
		"RevokedUntil": func(ctx context.Context) error {
			_, err := s.RevokedUntil(ctx, "x")
			return err
		},
		"Revoke": func(ctx context.Context) error { return s.Revoke(ctx, "x", time.Now().Add(time.Hour)) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "memcachestore: ") {
			t.Errorf("%s on a hung server: error %v, want a wrapped context.DeadlineExceeded", name, err)
		}
		if took > time.Second {
			t.Errorf("%s on a hung server took %s with a 100ms deadline", name, took)
		}
	}
}

// TestConcurrentRevokeManyRounds revokes one id from many goroutines with
// rising exps: the latest exp must win.
func TestConcurrentRevokeLatestWins(t *testing.T) {
	t.Parallel()
	s := memcachestore.New(newClient(testserver.Memcached(t).Addr()))
	ctx := context.Background()
	base := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	const workers = 16
	errs := make(chan error, workers)
	for w := range workers {
		go func() { errs <- s.Revoke(ctx, "contended", base.Add(time.Duration(w)*time.Second)) }()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Errorf("Revoke: %v", err)
		}
	}
	until, err := s.RevokedUntil(ctx, "contended")
	if want := base.Add((workers - 1) * time.Second); err != nil || !until.Equal(want) {
		t.Errorf("RevokedUntil = (%v, %v), want %v", until, err, want)
	}
}
