// Package memorystore is an in-process blocklist.Store: a map guarded by a
// read-write lock, with a heap ordered by expiry so that expired entries are
// removed in O(expired), never by scanning every entry.
//
// Choose it for a single instance that can afford to forget every logout when
// the process restarts, for tests, and as the reference backend. A lookup is a
// map read under a shared lock, with no allocation. It is not
// durable and not shared between processes: for that use boltstore (one
// machine, on disk) or redisstore (a fleet).
package memorystore

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/internal/expiry"
)

// DefaultSweepInterval is how often the background sweeper removes expired
// entries when WithSweepInterval is not given.
const DefaultSweepInterval = time.Minute

// Store is an in-memory blocklist.Store. It also implements
// blocklist.ExpiryStore. The zero value is not usable: call New.
type Store struct {
	closed     atomic.Bool
	sweepEvery time.Duration
	stop       chan struct{} // nil when no sweeper runs
	done       chan struct{}

	mu      sync.RWMutex
	entries map[string]int64 // jti -> exp in Unix nanoseconds
	expiry  expiryHeap       // every exp ever set for a live entry, soonest first
	log     announcementLog  // what watches read: watch.go
}

// Option configures a Store.
type Option func(*Store)

// WithSweepInterval sets how often a background goroutine removes expired
// entries (default DefaultSweepInterval). Zero starts no goroutine: expired
// entries are then removed by Revoke, RevokeOnce and Len, in amortised O(1)
// per call. A negative d panics in New. Expired entries are never reported
// as revoked, whenever they are removed. The option means the same in
// boltstore.
func WithSweepInterval(d time.Duration) Option {
	return func(s *Store) {
		if d < 0 {
			panic(fmt.Sprintf("memorystore: WithSweepInterval(%s): negative interval", d))
		}
		s.sweepEvery = d
	}
}

// New returns an empty Store. Call Close to stop its sweeper. Nil options
// are ignored; an invalid option value is a programming error and panics,
// with a message naming the option.
func New(opts ...Option) *Store {
	s := &Store{
		entries:    make(map[string]int64),
		sweepEvery: DefaultSweepInterval,
		log:        announcementLog{max: DefaultLogMaxLen, news: make(chan struct{})},
	}
	for _, opt := range opts {
		if opt != nil {
			opt(s)
		}
	}
	if s.sweepEvery > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.sweepLoop(s.sweepEvery)
	}
	return s
}

// Revoke implements blocklist.Store. Expired entries are swept as a side
// effect, in amortised O(1) per call.
func (s *Store) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if err := s.check(ctx, jti); err != nil {
		return err
	}
	now := time.Now()
	if !exp.After(now) {
		return nil
	}
	e, n := unixNano(exp), unixNano(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(n)
	if old, ok := s.entries[jti]; ok && old >= e {
		return nil
	}
	s.entries[jti] = e
	heap.Push(&s.expiry, expiryItem{exp: e, jti: jti})
	s.announceLocked(jti, e, n)
	return nil
}

// IsRevoked implements blocklist.Store. It allocates nothing.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	until, err := s.revokedUntil(ctx, jti)
	return until != 0, err
}

// RevokedUntil implements blocklist.ExpiryStore.
func (s *Store) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	until, err := s.revokedUntil(ctx, jti)
	if until == 0 || err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, until), nil
}

// revokedUntil returns the exp of jti in Unix nanoseconds, or 0 when jti is
// not revoked now.
func (s *Store) revokedUntil(ctx context.Context, jti string) (int64, error) {
	if err := s.check(ctx, jti); err != nil {
		return 0, err
	}
	now := unixNano(time.Now())
	s.mu.RLock()
	exp, ok := s.entries[jti]
	s.mu.RUnlock()
	if !ok || exp <= now {
		return 0, nil
	}
	return exp, nil
}

// Len reports the number of live revocations. It removes expired entries
// first, so its cost is O(expired).
func (s *Store) Len() int {
	now := unixNano(time.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	return len(s.entries)
}

// Close stops the sweeper. Later calls of Revoke,
// IsRevoked and RevokedUntil return an error wrapping blocklist.ErrClosed.
// Close is idempotent.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	s.wakeLocked() // watches return ErrClosed
	s.log.closedCh = true
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	return nil
}

func (s *Store) check(ctx context.Context, jti string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memorystore: %w", err)
	}
	if err := blocklist.ValidateID(jti); err != nil {
		return fmt.Errorf("memorystore: %w", err)
	}
	if s.closed.Load() {
		return fmt.Errorf("memorystore: %w", blocklist.ErrClosed)
	}
	return nil
}

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			now := unixNano(time.Now())
			s.mu.Lock()
			s.sweepLocked(now)
			s.mu.Unlock()
		}
	}
}

// sweepLocked pops every heap item whose exp has passed and deletes its
// entry unless a later Revoke extended it. Each item is pushed once and
// popped once, so the cost is O(expired log n).
func (s *Store) sweepLocked(now int64) {
	for len(s.expiry) > 0 && s.expiry[0].exp <= now {
		it := heap.Pop(&s.expiry).(expiryItem)
		if s.entries[it.jti] == it.exp {
			delete(s.entries, it.jti)
		}
	}
}

// unixNano is t.UnixNano clamped to the range it can represent (years 1678
// to 2262), so far-future exps stay far in the future.
func unixNano(t time.Time) int64 { return expiry.UnixNano(t) }

type expiryItem struct {
	exp int64
	jti string
}

type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
