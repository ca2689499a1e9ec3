package memcachestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
)

// DefaultPrefix starts every key when WithPrefix is not given.
const DefaultPrefix = "blocklist:"

// maxAttempts bounds the add / compare-and-swap rounds of one Revoke. Each
// lost round means another caller changed the entry, so only many
// concurrent revocations of the same id can use them up.
const maxAttempts = 16

// valueFlags marks an entry written by this package (the bytes "bl", then
// version 1). An entry under one of our keys with other flags, or a value of
// the wrong shape, is reported as an error, never as "not revoked".
const valueFlags uint32 = 0x626c0001

// expLen is the size of the exp at the start of every value: Unix
// milliseconds, rounded up, big-endian.
const expLen = 8

// Relative expirations longer than this are read by memcached as an absolute
// Unix time.
const maxRelativeSeconds = 30 * 24 * 60 * 60

// absoluteSlack is added to absolute (over 30 days) expirations, which
// memcached measures with its own host's clock: a memcached host whose clock
// runs up to this far ahead still keeps the entry until its exp. Reads check
// the exp held in the value, so the slack costs memory only, never accuracy.
const absoluteSlack = time.Hour

// maxExpMs is the latest exp a value can hold (year 292,277,026). Later exps
// are stored as this one.
const maxExpMs = math.MaxInt64

// Store is a blocklist.Store, and a blocklist.ExpiryStore, kept in memcached.
// It is safe for concurrent use. The zero value is not usable: call New.
type Store struct {
	client *memcache.Client
	prefix string // escaped: the start of every key
}

// Option configures a Store.
type Option func(*config)

type config struct {
	prefix string
}

// WithPrefix sets the text that starts every key of the Store, DefaultPrefix
// when not given. Stores with different prefixes on the same servers never
// see each other's revocations, even when one prefix starts with the other.
//
// Any bytes are accepted: those that memcached does not allow in a key
// (spaces, control characters, bytes above 0x7e) and the bytes '%', '=' and
// '#' appear in keys escaped as %XX. A prefix is too long when its escaped
// form exceeds 206 bytes; New panics on one. The empty prefix is allowed and
// is distinct from every other.
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// New returns a Store that keeps revocations in the memcached servers of
// client. The caller keeps ownership of client: the Store never closes it,
// and one client may serve several Stores. A client over several servers
// (memcache.New(a, b)) works; each id lives on one of them.
//
// New does not contact the servers. A nil client or an invalid option value
// (a prefix that is too long) is a programming error: New panics, with a
// message naming it, rather than return a Store whose every call fails.
func New(client *memcache.Client, opts ...Option) *Store {
	if client == nil {
		panic("memcachestore: New: nil *memcache.Client")
	}
	c := config{prefix: DefaultPrefix}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	s := &Store{client: client, prefix: escapePrefix(c.prefix)}
	if len(s.prefix) > maxPrefixLen {
		panic(fmt.Sprintf("memcachestore: New: WithPrefix: the prefix is %d bytes once escaped, at most %d leave room for a key", len(s.prefix), maxPrefixLen))
	}
	return s
}

// Revoke records in memcached that jti is revoked until exp.
//
// If exp is not in the future, Revoke stores nothing and returns nil.
// Revoking an id again never shortens its revocation: Revoke adds the entry
// if it is absent, and otherwise replaces it with a compare-and-swap only
// when exp is later, retrying when a concurrent caller changed it first, so
// no update is lost between processes. It gives up with an error after 16
// rounds, or when ctx is done between two rounds.
//
// The entry expires in memcached at exp, rounded up to the second, plus a
// margin for memcached's one-second clock (and, beyond 30 days, for the
// clock of its host). An exp past memcached's 32-bit clock (2038-01-19) is
// stored without expiry: memcached keeps it until it evicts it, and reads
// still end the revocation at exp, which the value holds.
//
// An error wrapping blocklist.ErrInvalidID is returned for an invalid id;
// any failure of memcached (unreachable, timeout, out of memory with -M) is
// returned wrapped, and the revocation may or may not have been stored: call
// Revoke again.
func (s *Store) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := s.check(ctx, "revoke", jti); err != nil {
		return err
	}
	now := time.Now()
	if !exp.After(now) {
		return nil
	}
	expMs := expiry.CeilMillis(exp)
	key, hashed := makeKey(s.prefix, jti)
	item := &memcache.Item{Key: key, Flags: valueFlags, Value: encodeValue(expMs, jti, hashed)}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("memcachestore: revoke: %w", err)
			}
		}
		item.CasID = 0
		item.Expiration = expiration(expMs, time.Now())
		err := s.store(ctx, (*memcache.Client).Add, item)
		if err == nil {
			return nil
		}
		if !errors.Is(err, memcache.ErrNotStored) {
			return fmt.Errorf("memcachestore: revoke: add: %w", err)
		}

		// The id is already revoked: keep the later exp.
		cur, err := s.get(ctx, key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			continue // expired or evicted since the add: add again
		}
		if err != nil {
			return fmt.Errorf("memcachestore: revoke: get: %w", err)
		}
		curMs, mine, err := decodeValue(cur, jti, hashed)
		if err != nil {
			return fmt.Errorf("memcachestore: revoke: %w", err)
		}
		if !mine {
			return errors.New("memcachestore: revoke: key holds another id (SHA-256 collision); not stored")
		}
		if curMs >= expMs {
			return nil
		}
		item.CasID = cur.CasID
		item.Expiration = expiration(expMs, time.Now())
		err = s.store(ctx, (*memcache.Client).CompareAndSwap, item)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, memcache.ErrCASConflict), // changed since the get
			errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss): // gone since the get
			continue
		default:
			return fmt.Errorf("memcachestore: revoke: compare-and-swap: %w", err)
		}
	}
	return fmt.Errorf("memcachestore: revoke: entry changed by concurrent callers in each of %d rounds", maxAttempts)
}

// IsRevoked reports whether jti is revoked now, with one memcached get. The
// answer is exact to the millisecond: the value holds the exp, so an entry
// that memcached still keeps past its exp reads as not revoked.
//
// A miss is "not revoked": memcached has no entry for jti, because it was
// never revoked, its revocation ended, or memcached forgot it (a restart, or
// an eviction under memory pressure; see the package documentation). Every
// other failure (unreachable server, timeout, a malformed reply or value) is
// returned as an error, never as false.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	expMs, err := s.lookup(ctx, "is revoked", jti)
	if err != nil {
		return false, err
	}
	return time.Now().UnixMilli() < expMs, nil
}

// RevokedUntil reports when the revocation of jti ends, with one memcached
// get: the latest exp it was revoked with, rounded up to the millisecond, or
// the zero Time when jti is not revoked now. Misses and errors are as for
// IsRevoked.
func (s *Store) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	expMs, err := s.lookup(ctx, "revoked until", jti)
	if err != nil {
		return time.Time{}, err
	}
	if time.Now().UnixMilli() >= expMs {
		return time.Time{}, nil
	}
	return time.UnixMilli(expMs), nil
}

// lookup returns the exp in Unix milliseconds stored for jti, or 0 when there
// is none.
func (s *Store) lookup(ctx context.Context, op, jti string) (int64, error) {
	if err := s.check(ctx, op, jti); err != nil {
		return 0, err
	}
	key, hashed := makeKey(s.prefix, jti)
	it, err := s.get(ctx, key)
	if err != nil {
		if errors.Is(err, memcache.ErrCacheMiss) {
			return 0, nil
		}
		return 0, fmt.Errorf("memcachestore: %s: %w", op, err)
	}
	expMs, mine, err := decodeValue(it, jti, hashed)
	if err != nil {
		return 0, fmt.Errorf("memcachestore: %s: %w", op, err)
	}
	if !mine {
		// Another id with the same SHA-256 holds the key, so jti could
		// not have been stored: Revoke refuses to overwrite it.
		return 0, nil
	}
	return expMs, nil
}

// check returns the error every method starts with, if any: a done context,
// an invalid id.
func (s *Store) check(ctx context.Context, op, jti string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachestore: %s: %w", op, err)
	}
	if err := blocklist.ValidateID(jti); err != nil {
		return fmt.Errorf("memcachestore: %s: %w", op, err)
	}
	return nil
}

// gomemcache takes no context: a call is bounded by the client's Timeout.
// When ctx has a deadline sooner than that, the call runs in a goroutine that
// is abandoned (it ends within Timeout) when the deadline passes first. Other
// calls, the common case, run directly and allocate nothing more.

func (s *Store) get(ctx context.Context, key string) (*memcache.Item, error) {
	if !s.deadlineBeforeTimeout(ctx) {
		return s.client.Get(key)
	}
	return untilDone(ctx, func() (*memcache.Item, error) { return s.client.Get(key) })
}

func (s *Store) store(ctx context.Context, op func(*memcache.Client, *memcache.Item) error, item *memcache.Item) error {
	if !s.deadlineBeforeTimeout(ctx) {
		return op(s.client, item)
	}
	it := *item // the abandoned call keeps its own copy
	_, err := untilDone(ctx, func() (struct{}, error) { return struct{}{}, op(s.client, &it) })
	return err
}

// untilDone runs call in a goroutine and returns its result, or ctx.Err()
// as soon as ctx is done; the call is then abandoned, and ends within the
// client's Timeout.
func untilDone[T any](ctx context.Context, call func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (s *Store) deadlineBeforeTimeout(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return false
	}
	timeout := s.client.Timeout
	if timeout <= 0 {
		timeout = memcache.DefaultTimeout
	}
	return time.Until(deadline) < timeout
}

// expiration returns the memcached expiration for an entry whose exp is
// expMs: seconds from now up to 30 days, a Unix time beyond, and 0 (never)
// beyond what an int32 Unix time can express. It is never earlier than exp:
// rounded up, plus one second because memcached's clock ticks once a second
// and may be up to a second behind when the entry is stored.
func expiration(expMs int64, now time.Time) int32 {
	expSec := expMs / 1000
	if expMs%1000 != 0 {
		expSec++
	}
	nowSec := now.Unix() // the second now falls in, so the rest rounds up
	if rel := expSec - nowSec + 1; rel <= maxRelativeSeconds {
		return int32(max(rel, 1))
	}
	abs := expSec + int64(absoluteSlack/time.Second)
	if abs > math.MaxInt32 {
		return 0
	}
	return int32(abs)
}

// encodeValue returns the value of an entry: the exp, then for a hashed key
// the id, so that reads can tell ids whose digests collide apart.
func encodeValue(expMs int64, jti string, hashed bool) []byte {
	n := expLen
	if hashed {
		n += len(jti)
	}
	v := make([]byte, expLen, n)
	binary.BigEndian.PutUint64(v, uint64(expMs))
	if hashed {
		v = append(v, jti...)
	}
	return v
}

// decodeValue returns the exp held by it, and whether it belongs to jti.
func decodeValue(it *memcache.Item, jti string, hashed bool) (expMs int64, mine bool, err error) {
	v := it.Value
	if it.Flags != valueFlags || len(v) < expLen || (!hashed && len(v) != expLen) {
		return 0, false, fmt.Errorf("unexpected entry under key %q (flags %#x, %d bytes): not written by this package", it.Key, it.Flags, len(v))
	}
	expMs = int64(binary.BigEndian.Uint64(v))
	if hashed && string(v[expLen:]) != jti {
		return 0, false, nil
	}
	return expMs, true, nil
}
