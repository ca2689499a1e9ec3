package boltstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// open opens a Store on a new file in a test directory, closed at cleanup
// and then checked (checkFile).
func open(t testing.TB, opts ...boltstore.Option) (*boltstore.Store, string) {
	t.Helper()
	return openStore(t, true, opts...)
}

// openUnchecked is open for a test that damages the file on purpose.
func openUnchecked(t testing.TB, opts ...boltstore.Option) (*boltstore.Store, string) {
	t.Helper()
	return openStore(t, false, opts...)
}

func openStore(t testing.TB, check bool, opts ...boltstore.Option) (*boltstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "blocklist.db")
	s, err := boltstore.Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if check {
			checkFile(t, path, boltstore.DefaultBucket)
		}
	})
	return s, path
}

// checkFile runs bbolt's consistency check and the Store's invariant on the
// file at path, as bbolt's own test helpers do when a test ends.
func checkFile(t testing.TB, path, bucket string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Errorf("reopening %s to check it: %v", filepath.Base(path), err)
		return
	}
	defer db.Close()
	if err := boltstore.Check(db, bucket); err != nil {
		t.Errorf("the file is inconsistent after the test: %v", err)
	}
}

func openDB(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustRevoke(t testing.TB, s blocklist.Store, jti string, exp time.Time) {
	t.Helper()
	if err := s.Revoke(context.Background(), jti, exp); err != nil {
		t.Fatalf("Revoke(%q): %v", jti, err)
	}
}

func mustIsRevoked(t testing.TB, s blocklist.Store, jti string) bool {
	t.Helper()
	ok, err := s.IsRevoked(context.Background(), jti)
	if err != nil {
		t.Fatalf("IsRevoked(%q): %v", jti, err)
	}
	return ok
}

func length(t testing.TB, s *boltstore.Store) int {
	t.Helper()
	n, err := s.Len()
	if err != nil {
		t.Fatalf("Len: %v", err)
	}
	return n
}

func TestReopenKeepsRevocations(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "blocklist.db")
	exp := time.Now().Add(time.Hour)
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustRevoke(t, s, "kept", exp)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if !mustIsRevoked(t, s, "kept") {
		t.Error("revocation lost across Close and Open")
	}
	until, err := s.RevokedUntil(context.Background(), "kept")
	if err != nil || until.Before(exp.Truncate(time.Millisecond)) || until.After(exp.Add(time.Millisecond)) {
		t.Errorf("RevokedUntil after reopen = %v, %v; want %v to the millisecond", until, err, exp)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	check := func(t *testing.T, s *boltstore.Store) {
		t.Helper()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v, want nil", err)
		}
		if err := s.Revoke(ctx, "x", time.Now().Add(time.Hour)); !errors.Is(err, blocklist.ErrClosed) {
			t.Errorf("Revoke after Close: %v, want ErrClosed", err)
		}
		if _, err := s.IsRevoked(ctx, "x"); !errors.Is(err, blocklist.ErrClosed) {
			t.Errorf("IsRevoked after Close: %v, want ErrClosed", err)
		}
		if _, err := s.RevokedUntil(ctx, "x"); !errors.Is(err, blocklist.ErrClosed) {
			t.Errorf("RevokedUntil after Close: %v, want ErrClosed", err)
		}
		if _, err := s.Len(); !errors.Is(err, blocklist.ErrClosed) {
			t.Errorf("Len after Close: %v, want ErrClosed", err)
		}
	}

	t.Run("Open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "blocklist.db")
		s, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		check(t, s)
		// The file is released: it opens again at once.
		s2, err := boltstore.Open(path, boltstore.WithTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatalf("Open after Close: %v", err)
		}
		s2.Close()
	})

	t.Run("New", func(t *testing.T) {
		db := openDB(t, filepath.Join(t.TempDir(), "app.db"))
		s, err := boltstore.New(db)
		if err != nil {
			t.Fatal(err)
		}
		check(t, s)
		// The caller's db stays open.
		if err := db.View(func(tx *bolt.Tx) error { return nil }); err != nil {
			t.Errorf("caller's db after Store.Close: %v, want it still open", err)
		}
	})

	t.Run("DBClosedByCaller", func(t *testing.T) {
		db := openDB(t, filepath.Join(t.TempDir(), "app.db"))
		s, err := boltstore.New(db)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		db.Close()
		if err := s.Revoke(ctx, "x", time.Now().Add(time.Hour)); !errors.Is(err, blocklist.ErrClosed) {
			t.Errorf("Revoke on a closed db: %v, want ErrClosed", err)
		}
		if ok, err := s.IsRevoked(ctx, "x"); !errors.Is(err, blocklist.ErrClosed) {
			t.Errorf("IsRevoked on a closed db = %v, %v; want ErrClosed", ok, err)
		}
	})
}

func TestLockedFile(t *testing.T) {
	t.Parallel()
	_, path := open(t)
	for _, tc := range []struct {
		name string
		opts []boltstore.Option
	}{
		{"DefaultTimeout", nil},
		{"ShortTimeout", []boltstore.Option{boltstore.WithTimeout(100 * time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan error, 1)
			go func() {
				s, err := boltstore.Open(path, tc.opts...)
				if err == nil {
					s.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, berrors.ErrTimeout) {
					t.Fatalf("second Open of a locked file: %v, want an error wrapping bbolt's ErrTimeout", err)
				}
				if msg := err.Error(); !strings.HasPrefix(msg, "boltstore: ") || !strings.Contains(msg, path) || !strings.Contains(msg, "locked") {
					t.Errorf("error %q should name the package, the path and the lock", msg)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("second Open of a locked file still waiting after 2s")
			}
		})
	}
}

func TestInvalidFile(t *testing.T) {
	t.Parallel()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	garbage := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	files := map[string][]byte{
		"one-byte":   {0x42},
		"text":       []byte("this is not a database\n"),
		"json":       []byte(`{"revoked": ["a", "b"]}`),
		"zeros-20k":  make([]byte, 20000),
		"random-100": garbage(100),
		"random-4k":  garbage(4096),
		"random-5k":  garbage(5000),
		"random-8k":  garbage(8192),
		"random-64k": garbage(64 << 10),
		"random-1m":  garbage(1 << 20),
		"random-5m":  garbage(5 << 20),
	}
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := boltstore.Open(path)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded on a file that is not a database", name)
			continue
		}
		if !errors.Is(err, boltstore.ErrInvalidFile) {
			t.Errorf("%s: Open error %v, want one wrapping ErrInvalidFile", name, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "boltstore: ") || !strings.Contains(msg, path) {
			t.Errorf("%s: error %q should name the package and the path", name, msg)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: Open changed a file it refused (err %v)", name, err)
		}
	}

	// Other failures are errors too, but not ErrInvalidFile.
	for name, path := range map[string]string{
		"directory":   dir,
		"missing-dir": filepath.Join(dir, "no", "such", "dir", "x.db"),
	} {
		s, err := boltstore.Open(path)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if errors.Is(err, boltstore.ErrInvalidFile) || !strings.HasPrefix(err.Error(), "boltstore: ") {
			t.Errorf("%s: Open error %v, want a boltstore error that is not ErrInvalidFile", name, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	func() {
		defer func() {
			if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "boltstore: New: nil") {
				t.Errorf("New(nil) recovered %v, want a panic naming the nil db", p)
			}
		}()
		boltstore.New(nil)
	}()
	path := filepath.Join(t.TempDir(), "app.db")
	db := openDB(t, path)
	for name, opt := range map[string]boltstore.Option{
		"an empty bucket name":    boltstore.WithBucket(""),
		"a negative timeout":      boltstore.WithTimeout(-time.Second),
		"a negative sweep period": boltstore.WithSweepInterval(-time.Second),
	} {
		if _, err := boltstore.New(db, opt); err == nil || !strings.HasPrefix(err.Error(), "boltstore: With") {
			t.Errorf("New with %s: %v, want an error naming the option", name, err)
		}
		if _, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"), opt); err == nil || !strings.HasPrefix(err.Error(), "boltstore: With") {
			t.Errorf("Open with %s: %v, want an error naming the option", name, err)
		}
	}
	db.Close()

	ro, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := boltstore.New(ro); err == nil {
		t.Error("New over a read-only db succeeded")
	}
}

// TestNewSharesDB keeps two blocklists beside an application's own bucket
// in one caller-owned database.
func TestNewSharesDB(t *testing.T) {
	t.Parallel()
	db := openDB(t, filepath.Join(t.TempDir(), "app.db"))
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("users"))
		if err != nil {
			return err
		}
		return b.Put([]byte("alice"), []byte("admin"))
	}); err != nil {
		t.Fatal(err)
	}
	a, err := boltstore.New(db, boltstore.WithBucket("access"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, err := boltstore.New(db, boltstore.WithBucket("refresh"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	exp := time.Now().Add(time.Hour)
	mustRevoke(t, a, "tok", exp)
	if !mustIsRevoked(t, a, "tok") {
		t.Error("access store lost its revocation")
	}
	if mustIsRevoked(t, r, "tok") {
		t.Error("refresh store sees the access store's revocation")
	}
	if err := db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("users")).Get([]byte("alice")); string(v) != "admin" {
			return fmt.Errorf("application bucket changed: alice = %q", v)
		}
		for _, name := range []string{"access", "access" + ".expiry", "refresh", "refresh" + ".expiry"} {
			if tx.Bucket([]byte(name)) == nil {
				return fmt.Errorf("bucket %q missing", name)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestExpiryOnTime runs on synctest's clock: a revocation ends at its exp,
// to the millisecond.
func TestExpiryOnTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testExpiryOnTime)
}

func testExpiryOnTime(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	mustRevoke(t, s, "tok", exp)
	mustRevoke(t, s, "past", time.Now().Add(-time.Second))
	if !mustIsRevoked(t, s, "tok") {
		t.Fatal("not revoked before exp")
	}
	if mustIsRevoked(t, s, "past") {
		t.Error("revoked with an exp in the past")
	}
	time.Sleep(time.Until(exp) - time.Millisecond) // Revoke waited for its batch
	if !mustIsRevoked(t, s, "tok") {
		t.Error("not revoked a millisecond before exp")
	}
	time.Sleep(time.Until(exp))
	if mustIsRevoked(t, s, "tok") {
		t.Error("still revoked at exp")
	}
	if until, err := s.RevokedUntil(ctx, "tok"); err != nil || !until.IsZero() {
		t.Errorf("RevokedUntil at exp = %v, %v; want the zero Time", until, err)
	}
}

// TestSweeper sends waves of short-lived revocations through a store and
// checks that the sweeper removes them all, keeps live entries, and that the
// file stops growing once bbolt reuses the freed pages.
func TestSweeper(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSweeper)
}

func testSweeper(t *testing.T) {
	s, path := open(t, boltstore.WithSweepInterval(time.Minute))
	ctx := context.Background()

	mustRevoke(t, s, "keeper", time.Now().Add(24*time.Hour))
	// Revoked briefly, then for a day: the sweep of its first exp must not
	// remove it.
	mustRevoke(t, s, "extended", time.Now().Add(time.Minute))
	mustRevoke(t, s, "extended", time.Now().Add(24*time.Hour))

	const waves, perWave, workers = 6, 320, 32
	var sizes []int64
	for w := range waves {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for g := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < perWave; i += workers {
					jti := fmt.Sprintf("wave%d-%d", w, i)
					exp := time.Now().Add(time.Duration(1+i%50) * time.Second)
					if err := s.Revoke(ctx, jti, exp); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := length(t, s); n < perWave {
			t.Fatalf("wave %d: Len = %d right after %d revocations", w, n, perWave)
		}
		time.Sleep(2 * time.Minute)
		if n := length(t, s); n != 2 {
			t.Fatalf("wave %d: Len = %d once it expired, want 2: expired entries are not counted", w, n)
		}
		waitFor(t, fmt.Sprintf("wave %d to be swept", w), func() (bool, error) {
			n, err := boltstore.Held(s)
			return n == 2, err
		})
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, info.Size())
	}
	for _, jti := range []string{"keeper", "extended"} {
		if !mustIsRevoked(t, s, jti) {
			t.Errorf("%s: live revocation removed by the sweeper", jti)
		}
	}
	t.Logf("file sizes after each wave: %v", sizes)
	if last, second := sizes[len(sizes)-1], sizes[1]; last > second {
		t.Errorf("file grew from %d to %d bytes across waves of revocations that all expired; sizes %v", second, last, sizes)
	}
}

func TestSweeperStoppedByClose(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSweeperStoppedByClose)
}

func testSweeperStoppedByClose(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "app.db"))
	s, err := boltstore.New(db, boltstore.WithSweepInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	mustRevoke(t, s, "tok", time.Now().Add(time.Minute))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close the sweeper no longer touches the caller's db: the
	// expired entry stays.
	time.Sleep(time.Hour)
	if err := db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(boltstore.DefaultBucket)).Get([]byte("tok")) == nil {
			return errors.New("entry swept after Close")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

func TestNilOptionIsIgnored(t *testing.T) {
	t.Parallel()
	s, _ := open(t, nil, nil)
	ctx := context.Background()
	if err := s.Revoke(ctx, "a", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IsRevoked(ctx, "a"); !ok || err != nil {
		t.Fatalf("IsRevoked = %v, %v; want true, nil", ok, err)
	}
}

// With WithSweepInterval(0) no goroutine sweeps; each write removes up to
// two expired entries, so a backlog shrinks while revocations keep coming.
func TestNoSweeperWritesSweep(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		s, _ := open(t, boltstore.WithSweepInterval(0))
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() { mustRevoke(t, s, fmt.Sprint("short-", i), time.Now().Add(time.Minute)) })
		}
		wg.Wait()
		time.Sleep(2 * time.Minute)
		if n := length(t, s); n != 0 {
			t.Fatalf("Len = %d after every revocation ended, want 0", n)
		}
		for i := range 10 {
			if err := s.Revoke(ctx, fmt.Sprint("long-", i), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := boltstore.Held(s); err != nil || n != 100-2*10+10 {
			t.Fatalf("Held = %d, %v after 10 revocations; want %d: each removes two expired entries", n, err, 100-2*10+10)
		}
	})
}
