package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrInvalidFile is wrapped by the error Open returns when the file exists
// but is not a bbolt database, or is one too damaged to open, and by the
// error of any method that meets a damaged page later (bbolt checks only the
// first pages when it opens a file).
var ErrInvalidFile = errors.New("not a bbolt database, or a damaged one")

// Store is a blocklist.Store, and a blocklist.ExpiryStore, kept in a bbolt
// database. It is safe for concurrent use. Create it with Open or New and
// stop it with Close.
type Store struct {
	db      *bolt.DB
	ownDB   bool // Close closes db: Open made it
	ids     []byte
	index   []byte
	now     func() time.Time
	closed  atomic.Bool
	stop    chan struct{} // closed by Close to stop the sweeper
	done    chan struct{} // closed by the sweeper when it returns
	closing sync.Once
	// sweepInline is set when no sweeper runs: each write then removes a
	// few expired entries itself (WithSweepInterval(0)).
	sweepInline bool
}

// Open opens the bbolt database at path, creating the file (mode 0600) and
// its buckets when missing, and starts the sweeper. Close closes the file.
//
// If another process, or another Store of this process, has the file open,
// Open waits up to the timeout (WithTimeout, one second by default) and then
// returns an error wrapping bbolt's ErrTimeout. If the file exists but is not
// a bbolt database, the error wraps ErrInvalidFile. Errors name the path.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	db, err := openDB(path, cfg.timeout)
	if err != nil {
		return nil, err
	}
	s, err := newStore(db, cfg, true)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// New returns a Store kept in db, a database the caller opened for writing
// and still owns: Close stops the Store's sweeper but leaves db open, and
// the caller closes db after the Store. New creates the Store's buckets
// (WithBucket) when missing, and returns an error if db is read-only or an
// option is invalid; a nil db is a programming error and panics. Revoke
// uses db.Batch, so db.MaxBatchSize and db.MaxBatchDelay tune how
// revocations are grouped.
//
// If the caller closes db while the Store is in use, every method returns an
// error wrapping blocklist.ErrClosed.
func New(db *bolt.DB, opts ...Option) (*Store, error) {
	if db == nil {
		panic("boltstore: New: nil *bbolt.DB")
	}
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	return newStore(db, cfg, false)
}

// openDB opens path with bbolt and turns its errors into ones that say what
// went wrong with which file.
func openDB(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		// bbolt validates the meta pages' checksums before it trusts a
		// file, but a panic on a damaged file must still be an error.
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("boltstore: open %s: %w: %v", path, ErrInvalidFile, p)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("boltstore: open %s: file is locked by another process or Store, gave up after %s: %w", path, timeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), tooSmall(path, err):
		return nil, fmt.Errorf("boltstore: open %s: %w: %w", path, ErrInvalidFile, err)
	default:
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
}

// tooSmall reports whether a failed bbolt.Open was refused because the file
// is shorter than the two meta pages every bbolt file starts with; bbolt
// reports that with an error that has no sentinel.
func tooSmall(path string, err error) bool {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return false
	}
	info, statErr := os.Stat(path)
	return statErr == nil && info.Mode().IsRegular() && info.Size() > 0 && info.Size() < 2*int64(os.Getpagesize())
}

func newStore(db *bolt.DB, cfg config, ownDB bool) (*Store, error) {
	if db.IsReadOnly() {
		return nil, fmt.Errorf("boltstore: %s is open read-only; a Store must write", db.Path())
	}
	s := &Store{
		db:    db,
		ownDB: ownDB,
		ids:   []byte(cfg.bucket),
		index: []byte(cfg.bucket + indexSuffix),
		now:   time.Now,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	err := s.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{s.ids, s.index} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap("create buckets", err)
	}
	if cfg.sweepEvery > 0 {
		go s.sweepLoop(cfg.sweepEvery)
	} else {
		s.sweepInline = true
		close(s.done)
	}
	return s, nil
}

// Close stops the sweeper and, for a Store made by Open, closes the file;
// a Store made by New leaves its db open. Afterwards every method returns an
// error wrapping blocklist.ErrClosed. Close is idempotent: calls after the
// first return nil.
func (s *Store) Close() error {
	var err error
	s.closing.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
		if s.ownDB {
			if cerr := s.db.Close(); cerr != nil {
				err = fmt.Errorf("boltstore: close: %w", cerr)
			}
		}
	})
	return err
}

// Revoke records that the token jti is revoked until exp, as
// blocklist.Store requires, and returns once the change is committed and
// fsynced. If exp is not in the future it writes nothing. An existing
// revocation is kept when it ends later than exp, in the same transaction
// that reads it, so concurrent calls cannot shorten one another.
//
// ctx is checked before any work. Once the write is queued, Revoke waits for
// its batch to commit, which takes about one fsync plus the batch delay: a
// bbolt transaction cannot be cancelled halfway, so a deadline that passes
// during the commit does not interrupt it.
func (s *Store) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := s.check(ctx, jti, "revoke"); err != nil {
		return err
	}
	if !exp.After(s.now()) {
		return nil
	}
	// One allocation holds the index key exp||id; its first 8 bytes are the
	// value and the rest the key of the ids bucket. bbolt keeps them until
	// the transaction commits, and a batch may run the func twice: nothing
	// here is modified.
	entry := make([]byte, 8+len(jti))
	binary.BigEndian.PutUint64(entry, encodeMillis(expiry.CeilMillis(exp)))
	copy(entry[8:], jti)
	if err := s.batch(func(tx *bolt.Tx) error { return s.put(tx, entry) }); err != nil {
		return s.wrap("revoke", err)
	}
	return nil
}

// put stores entry (exp||id) unless id is already revoked until later.
func (s *Store) put(tx *bolt.Tx, entry []byte) error {
	ids, index, err := s.buckets(tx)
	if err != nil {
		return err
	}
	id, exp := entry[8:], entry[:8]
	if old := ids.Get(id); old != nil {
		if len(old) != 8 {
			return fmt.Errorf("corrupt entry: %d-byte value, want 8", len(old))
		}
		if bytes.Compare(old, exp) >= 0 {
			return nil // the existing revocation lasts at least as long
		}
		oldKey := make([]byte, 0, len(entry))
		oldKey = append(append(oldKey, old...), id...)
		if err := index.Delete(oldKey); err != nil {
			return err
		}
	}
	if err := ids.Put(id, exp); err != nil {
		return err
	}
	if err := index.Put(entry, nil); err != nil {
		return err
	}
	if s.sweepInline {
		_, err = s.deleteExpired(tx, s.nowKey(), sweepInline)
	}
	return err
}

// IsRevoked reports whether jti is revoked now, as blocklist.Store
// requires: one read-only transaction, one key lookup.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	exp, err := s.lookup(ctx, jti, "is revoked")
	if err != nil {
		return false, err
	}
	return exp > s.now().UnixMilli(), nil
}

// RevokedUntil reports when the revocation of jti ends, to the millisecond
// (never earlier than the exp given to Revoke, less than a millisecond
// later), or the zero Time when jti is not revoked now. It costs what
// IsRevoked costs.
func (s *Store) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	exp, err := s.lookup(ctx, jti, "revoked until")
	if err != nil {
		return time.Time{}, err
	}
	if exp <= s.now().UnixMilli() {
		return time.Time{}, nil
	}
	return time.UnixMilli(exp), nil
}

// lookup returns the exp stored for jti in Unix milliseconds, or
// math.MinInt64 when there is none.
func (s *Store) lookup(ctx context.Context, jti, op string) (int64, error) {
	if err := s.check(ctx, jti, op); err != nil {
		return 0, err
	}
	// bbolt only reads the key, so the id's bytes are not copied.
	key := unsafe.Slice(unsafe.StringData(jti), len(jti))
	exp := int64(math.MinInt64)
	err := s.view(func(tx *bolt.Tx) error {
		ids := tx.Bucket(s.ids)
		if ids == nil {
			return errMissingBucket(s.ids)
		}
		v := ids.Get(key)
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return fmt.Errorf("corrupt entry: %d-byte value, want 8", len(v))
		}
		exp = decodeMillis(binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return 0, s.wrap(op, err)
	}
	return exp, nil
}

// Len returns the number of live revocations, as memorystore's Len does:
// entries whose exp has passed are not counted, whether or not the sweeper
// has removed them yet. It reads every entry in one read-only transaction,
// O(n): it is meant for tests, metrics and operators, not for every request.
func (s *Store) Len() (int, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("boltstore: len: %w", blocklist.ErrClosed)
	}
	nowMs := s.now().UnixMilli()
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		ids := tx.Bucket(s.ids)
		if ids == nil {
			return errMissingBucket(s.ids)
		}
		return ids.ForEach(func(_, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("corrupt entry: %d-byte value, want 8", len(v))
			}
			if decodeMillis(binary.BigEndian.Uint64(v)) > nowMs {
				n++
			}
			return nil
		})
	})
	if err != nil {
		return 0, s.wrap("len", err)
	}
	return n, nil
}

// check applies the rules every method starts with: a valid id, a live
// context, an open store.
func (s *Store) check(ctx context.Context, jti, op string) error {
	if err := blocklist.ValidateID(jti); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	if s.closed.Load() {
		return fmt.Errorf("boltstore: %s: %w", op, blocklist.ErrClosed)
	}
	return nil
}

// wrap adds the package name and operation to an error from bbolt; a
// database closed under the Store also wraps blocklist.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("boltstore: %s: %w: %w", op, blocklist.ErrClosed, err)
	}
	return fmt.Errorf("boltstore: %s: %w", op, err)
}

// view, update and batch run fn as db.View, db.Update and db.Batch do, and
// turn a panic of bbolt into an error wrapping ErrInvalidFile. bbolt checks
// only the meta pages when it opens a file, and panics when a transaction
// later meets a damaged page: in a caller that would crash a request, in the
// sweeper the whole process. (A panic while a batch commits on bbolt's own
// timer goroutine cannot be caught here.)
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer recoverDamage(&err)
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer recoverDamage(&err)
	return s.db.Update(fn)
}

func (s *Store) batch(fn func(*bolt.Tx) error) (err error) {
	defer recoverDamage(&err)
	return s.db.Batch(func(tx *bolt.Tx) (err error) {
		defer recoverDamage(&err)
		return fn(tx)
	})
}

func recoverDamage(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: bbolt panicked: %v", ErrInvalidFile, p)
	}
}

func (s *Store) buckets(tx *bolt.Tx) (ids, index *bolt.Bucket, err error) {
	if ids = tx.Bucket(s.ids); ids == nil {
		return nil, nil, errMissingBucket(s.ids)
	}
	if index = tx.Bucket(s.index); index == nil {
		return nil, nil, errMissingBucket(s.index)
	}
	return ids, index, nil
}

func errMissingBucket(name []byte) error {
	return fmt.Errorf("bucket %q is missing: deleted by another user of the database", name)
}
