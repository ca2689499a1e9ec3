package memorystore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/baseline"
	"github.com/jwtblocklist/blocklist/internal/measure"
	"github.com/jwtblocklist/blocklist/memorystore"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		s := memorystore.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestConformanceBusySweeper runs the suite with a sweeper that runs every
// millisecond, so that it races with Revoke and lookups while entries expire
// and are extended; with the default interval of a minute it never runs
// during the suite.
func TestConformanceBusySweeper(t *testing.T) {
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		s := memorystore.New(memorystore.WithSweepInterval(time.Millisecond))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestExpiredEntriesAreRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New(memorystore.WithSweepInterval(0))
		defer s.Close()
		ctx := context.Background()
		for i := range 1000 {
			exp := time.Now().Add(time.Duration(i%10+1) * time.Minute)
			if err := s.Revoke(ctx, fmt.Sprint("jti-", i), exp); err != nil {
				t.Fatal(err)
			}
		}
		// Extend one entry: its first heap item must not delete it.
		if err := s.Revoke(ctx, "jti-0", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := s.Len(); n != 1000 {
			t.Fatalf("Len() = %d, want 1000", n)
		}
		time.Sleep(5 * time.Minute)
		if n := s.Len(); n != 501 {
			t.Fatalf("Len() after 5 minutes = %d, want 501 (500 live and the extended one)", n)
		}
		time.Sleep(10 * time.Minute)
		if n := s.Len(); n != 1 {
			t.Fatalf("Len() after every short exp = %d, want 1", n)
		}
		if ok, _ := s.IsRevoked(ctx, "jti-0"); !ok {
			t.Fatal("the extended entry was swept with its first exp")
		}
	})
}

// The background sweeper removes an expired entry within one interval of
// its exp, with no call to the Store.
func TestBackgroundSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const every = time.Minute
		s := memorystore.New(memorystore.WithSweepInterval(every))
		defer s.Close()
		exp := time.Now().Add(every + time.Second)
		if err := s.Revoke(context.Background(), "a", exp); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * every) // the sweep at 2*every is the first after exp
		synctest.Wait()
		// Len sweeps by itself, so look at what the store holds instead.
		if n := memorystore.Held(s); n != 0 {
			t.Fatalf("the store holds %d entries after the sweeper ran, want 0", n)
		}
	})
}

func TestClosed(t *testing.T) {
	s := memorystore.New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if err := s.Revoke(ctx, "a", time.Now().Add(time.Hour)); !errors.Is(err, blocklist.ErrClosed) {
		t.Errorf("Revoke after Close: %v, want ErrClosed", err)
	}
	if _, err := s.IsRevoked(ctx, "a"); !errors.Is(err, blocklist.ErrClosed) {
		t.Errorf("IsRevoked after Close: %v, want ErrClosed", err)
	}
}

// BenchmarkConformance runs the workload every Store of this module is
// measured with (conformance.RunBenchmarks).
func BenchmarkConformance(b *testing.B) {
	conformance.RunBenchmarks(b, func(b *testing.B) blocklist.Store {
		s := memorystore.New()
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// BenchmarkVersusRaw times IsRevoked and Revoke in turns with the bare map
// and lock the Store is built on; the *-x-raw ratios are the cost of the
// contract's checks and the expiry heap.
func BenchmarkVersusRaw(b *testing.B) {
	s := memorystore.New()
	b.Cleanup(func() { s.Close() })
	measure.Versus(b, s, baseline.Memory())
}

func TestNilOptionIsIgnored(t *testing.T) {
	s := memorystore.New(nil, nil)
	defer s.Close()
	ctx := context.Background()
	if err := s.Revoke(ctx, "a", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IsRevoked(ctx, "a"); !ok || err != nil {
		t.Fatalf("IsRevoked = %v, %v; want true, nil", ok, err)
	}
}
