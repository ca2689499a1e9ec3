// Package boltstore is a durable blocklist.Store in a single bbolt file: the
// embedded backend for an application that runs on one machine and has no
// Redis.
//
// Choose it when logouts must survive a restart or a crash and one process
// owns the data; for a fleet of servers use redisstore, and for tests or a
// blocklist that may be forgotten on restart use memorystore.
//
// # Cost
//
// A lookup (IsRevoked, RevokedUntil) is one read-only bbolt transaction and
// one B+tree descent on a memory-mapped file: about a microsecond, no disk
// access once the pages are cached, no allocation beyond bbolt's own.
//
// A revocation is written with bbolt's DB.Batch and returns only after its
// transaction is committed and fsynced. Concurrent Revoke calls share one
// transaction and one fsync, so a single caller waits about one fsync plus
// the batch delay (DB.MaxBatchDelay, 10ms by default), and a thousand
// concurrent logouts cost about as much as a few.
//
// # Durability
//
// When Revoke returns nil the revocation is on disk: a process killed at any
// moment, even with SIGKILL, loses no acknowledged revocation, and the file
// reopens cleanly. A revocation whose Revoke returned an error may or may not
// have been written.
//
// # Layout
//
// The store keeps two buckets: one maps each token id to its exp (8 bytes:
// Unix milliseconds, big-endian, sign bit flipped so that bytes sort like
// times), the other is an index keyed by exp||id, ordered by expiry. A background sweeper walks the index from its
// start and deletes expired entries, so a sweep costs O(expired) whatever the
// size of the file, and bbolt reuses the freed pages: a steady stream of
// short-lived revocations does not grow the file without bound. Lookups never
// depend on the sweeper: an entry whose exp has passed answers "not revoked"
// whether or not it is still on disk.
//
// bbolt lets one process at a time open a file for writing. Open waits for
// the file lock for a short, configurable time (WithTimeout) and then returns
// an error, instead of hanging behind another process.
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
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults used when the matching option is not given.
const (
	// DefaultBucket is the name of the bucket holding token ids. The expiry
	// index lives in a second bucket, named DefaultBucket + IndexSuffix.
	DefaultBucket = "blocklist"

	// IndexSuffix is appended to the bucket name to name the expiry index.
	IndexSuffix = ".expiry"

	// DefaultTimeout is how long Open waits for the file lock held by
	// another process before it gives up.
	DefaultTimeout = time.Second

	// DefaultSweepInterval is how often the background sweeper removes
	// expired entries from the file.
	DefaultSweepInterval = time.Minute
)

// ErrInvalidFile is wrapped by the error Open returns when the file exists
// but is not a bbolt database, or is one too damaged to open, and by the
// error of any method that meets a damaged page later (bbolt checks only the
// first pages when it opens a file).
var ErrInvalidFile = errors.New("not a bbolt database, or a damaged one")

// sweepChunk bounds the deletions of one sweep transaction, so that a large
// backlog of expired entries never holds the write lock for long.
const sweepChunk = 1000

// Option configures Open and New.
type Option func(*config)

type config struct {
	bucket     string
	timeout    time.Duration
	sweepEvery time.Duration
	now        func() time.Time
}

// WithBucket sets the name of the bucket that holds token ids; the expiry
// index is kept in the bucket named name + IndexSuffix. Both are created
// when missing. Use it with New to keep the blocklist beside an
// application's own buckets, or to keep several blocklists in one file. The
// default is DefaultBucket. An empty name makes Open and New fail.
func WithBucket(name string) Option {
	return func(c *config) { c.bucket = name }
}

// WithTimeout sets how long Open waits for the file lock when another
// process (or another Store in this one) has the file open, before it
// returns an error. The default is DefaultTimeout. Zero or less waits
// forever. New ignores it: the caller opened the database.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			d = 0
		}
		c.timeout = d
	}
}

// WithSweepInterval sets how often the background sweeper removes expired
// entries from the file. The default is DefaultSweepInterval; zero or less
// keeps the default, since only the sweeper bounds the file's size. Expired
// entries never answer "revoked", whenever they are removed.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.sweepEvery = d
		}
	}
}

// WithClock makes the Store read the time from now instead of time.Now, both
// to decide whether a revocation has expired and to sweep. Tests use it to
// expire entries without waiting. A nil func keeps time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

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
// (WithBucket) when missing, and fails if db is nil or read-only. Revoke
// uses db.Batch, so db.MaxBatchSize and db.MaxBatchDelay tune how
// revocations are grouped.
//
// If the caller closes db while the Store is in use, every method returns an
// error wrapping blocklist.ErrClosed.
func New(db *bolt.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("boltstore: New: nil *bbolt.DB")
	}
	return newStore(db, newConfig(opts), false)
}

func newConfig(opts []Option) config {
	cfg := config{
		bucket:     DefaultBucket,
		timeout:    DefaultTimeout,
		sweepEvery: DefaultSweepInterval,
		now:        time.Now,
	}
	for _, opt := range opts {
		if opt != nil { // a nil option, say from a conditional list, is no option
			opt(&cfg)
		}
	}
	return cfg
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
	if cfg.bucket == "" {
		return nil, errors.New("boltstore: empty bucket name")
	}
	s := &Store{
		db:    db,
		ownDB: ownDB,
		ids:   []byte(cfg.bucket),
		index: []byte(cfg.bucket + IndexSuffix),
		now:   cfg.now,
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
	go s.sweepLoop(cfg.sweepEvery)
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
	binary.BigEndian.PutUint64(entry, encodeMillis(ceilMillis(exp)))
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
	return index.Put(entry, nil)
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

// Len returns the number of entries in the file, including expired ones the
// sweeper has not removed yet. It walks the bucket: it is meant for tests and
// metrics, not for every request.
func (s *Store) Len() (int, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("boltstore: len: %w", blocklist.ErrClosed)
	}
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		ids := tx.Bucket(s.ids)
		if ids == nil {
			return errMissingBucket(s.ids)
		}
		n = ids.Stats().KeyN
		return nil
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

// sweepLoop removes expired entries at once and then every interval, until
// Close.
func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		// A failed sweep is retried at the next tick; it removes nothing,
		// and lookups never count on the sweeper. Whatever broke it (a
		// closed or damaged database) also fails Revoke and IsRevoked,
		// which return the error to their callers.
		_ = s.sweep()
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// sweep deletes every entry whose exp has passed, walking the expiry index
// from its start: O(expired), in transactions of at most sweepChunk
// deletions.
func (s *Store) sweep() error {
	var now [8]byte
	binary.BigEndian.PutUint64(now[:], encodeMillis(s.now().UnixMilli()))
	expired := func(k []byte) bool { return k != nil && (len(k) < 8 || bytes.Compare(k[:8], now[:]) <= 0) }

	for {
		// A read transaction first, so that an idle store never takes the
		// write lock or fsyncs.
		var due bool
		err := s.view(func(tx *bolt.Tx) error {
			_, index, err := s.buckets(tx)
			if err != nil {
				return err
			}
			k, _ := index.Cursor().First()
			due = expired(k)
			return nil
		})
		if err != nil || !due {
			return err
		}
		var more bool
		err = s.update(func(tx *bolt.Tx) error {
			ids, index, err := s.buckets(tx)
			if err != nil {
				return err
			}
			c := index.Cursor()
			for n := 0; ; n++ {
				// First again after each delete: a bbolt cursor may skip a
				// key when Next follows Delete.
				k, _ := c.First()
				if !expired(k) {
					return nil
				}
				if n == sweepChunk {
					more = true
					return nil
				}
				if len(k) > 8 {
					// Delete the id only if this index key is its current
					// exp; a later revocation has its own index key.
					if v := ids.Get(k[8:]); v != nil && bytes.Equal(v, k[:8]) {
						if err := ids.Delete(k[8:]); err != nil {
							return err
						}
					}
				}
				if err := c.Delete(); err != nil {
					return err
				}
			}
		})
		if err != nil || !more {
			return err
		}
		select {
		case <-s.stop:
			return nil
		default:
		}
	}
}

// ceilMillis returns t in Unix milliseconds, rounded up so that a stored
// revocation never ends before its exp. Times beyond what int64 milliseconds
// hold (292 million years) are clamped.
func ceilMillis(t time.Time) int64 {
	const maxSec = math.MaxInt64/1000 - 1
	if sec := t.Unix(); sec > maxSec {
		return math.MaxInt64
	} else if sec < -maxSec {
		return math.MinInt64 + 1
	}
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// encodeMillis maps int64 to uint64 preserving order, so that big-endian
// bytes sort like the times they encode, negative ones included.
func encodeMillis(ms int64) uint64 { return uint64(ms) ^ (1 << 63) }

func decodeMillis(u uint64) int64 { return int64(u ^ (1 << 63)) }
