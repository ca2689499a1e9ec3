package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/boltstore"
	bolt "go.etcd.io/bbolt"
)

// TestDamagedPage: bbolt checks only the meta pages when it opens a file and
// panics when a transaction meets a damaged page. Every method, and the
// sweeper (where a panic would end the process), must turn that into an
// error wrapping ErrInvalidFile.
func TestDamagedPage(t *testing.T) {
	t.Parallel()
	s, path := openUnchecked(t)
	ctx := context.Background()
	soon := time.Now().Add(20 * time.Millisecond)
	// Enough entries that neither bucket is inline in its parent page,
	// revoked at once so that they share a few commits.
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() {
			if err := s.Revoke(ctx, fmt.Sprint("id-", i), soon.Add(time.Duration(i%2)*time.Hour)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Overwrite the header of the root page of both buckets, the ids and
	// the expiry index, as a torn write or a bad disk would.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var roots []int64
	err = db.View(func(tx *bolt.Tx) error {
		for _, name := range []string{boltstore.DefaultBucket, boltstore.DefaultBucket + ".expiry"} {
			root := int64(tx.Bucket([]byte(name)).Root())
			if root == 0 {
				return fmt.Errorf("bucket %s is inline: no page of its own to damage", name)
			}
			roots = append(roots, root)
		}
		return nil
	})
	pageSize := int64(db.Info().PageSize)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range roots {
		if _, err := f.WriteAt([]byte("garbage!garbage!"), root*pageSize); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	time.Sleep(time.Until(soon)) // so that the sweeper has work at once
	s, err = boltstore.Open(path, boltstore.WithSweepInterval(time.Millisecond))
	if err != nil {
		t.Skipf("bbolt refused the damaged file at Open, which is fine: %v", err)
	}
	defer s.Close()
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, boltstore.ErrInvalidFile) {
			t.Errorf("%s on a damaged page: error %v, want one wrapping ErrInvalidFile", name, err)
		}
	}
	_, err = s.IsRevoked(ctx, "id-1")
	check("IsRevoked", err)
	_, err = s.RevokedUntil(ctx, "id-1")
	check("RevokedUntil", err)
	check("RevokedUntilEach", s.RevokedUntilEach(ctx, []string{"id-1", "id-2"}, make([]time.Time, 2)))
	check("Revoke", s.Revoke(ctx, "id-1", time.Now().Add(2*time.Hour)))
	_, err = s.RevokeOnce(ctx, "new", time.Now().Add(time.Hour))
	check("RevokeOnce", err)
	_, err = s.Len()
	check("Len", err)
	time.Sleep(50 * time.Millisecond) // the sweeper runs into the damage too
}
