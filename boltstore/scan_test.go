package boltstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A scan longer than one chunk reports every live entry exactly once, and
// fn may write to the Store: it runs between read transactions, never in
// one (a bbolt write waiting for a read of its own goroutine deadlocks).
func TestScanChunksAndWritesFromFn(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	const n = 2500 // two and a half chunks
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { mustRevoke(t, s, fmt.Sprintf("id-%04d", i), exp) })
	}
	wg.Wait()
	mustRevoke(t, s, "ends", time.Now().Add(time.Millisecond))
	time.Sleep(5 * time.Millisecond)

	seen := make(map[string]int, n)
	err := s.ScanRevoked(ctx, func(jti string, until time.Time) error {
		seen[jti]++
		if until.UnixMilli() != exp.Add(time.Millisecond-1).Truncate(time.Millisecond).UnixMilli() {
			t.Errorf("%s until %s, want %s rounded up to the millisecond", jti, until, exp)
		}
		if len(seen)%1000 == 1 {
			mustRevoke(t, s, jti, exp.Add(time.Hour)) // a write from fn
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("ScanRevoked reported %d ids, want %d", len(seen), n)
	}
	for jti, k := range seen {
		if k != 1 {
			t.Errorf("%s reported %d times", jti, k)
		}
	}
	if seen["ends"] != 0 {
		t.Error("an expired entry was reported")
	}
}
