package memorystore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtblocklist/blocklist"
)

var (
	_ blocklist.WatchStore = (*Store)(nil)
	_ blocklist.ScanStore  = (*Store)(nil)
)

// DefaultLogMaxLen is how many announcements the Store keeps for its
// watches when WithLogMaxLen is not given. Each holds its id (up to
// blocklist.MaxIDLen bytes) until it is overwritten or the last watch ends,
// so the log's memory is bounded by n times the longest id.
const DefaultLogMaxLen = 100_000

// watchBatch is the most announcements a watch copies out of the log under
// one lock; the rest wait for its next pass.
const watchBatch = 1000

// WithLogMaxLen sets how many announcements the Store keeps for watches
// that fell behind (default DefaultLogMaxLen), as redisstore's
// WithStreamMaxLen bounds its stream: a watch that is more than n
// revocations behind when it reads, whether its fn was slow or the watch
// was cut (see CutWatches), has missed some, and reports Synced instead of
// delivering them. n must be at least 1; New panics otherwise.
func WithLogMaxLen(n int) Option {
	return func(s *Store) {
		if n < 1 {
			panic(fmt.Sprintf("memorystore: WithLogMaxLen(%d): want at least 1", n))
		}
		s.log.max = n
	}
}

// announcement is one revocation in the log: jti is revoked until exp
// (Unix nanoseconds). seq numbers announcements from 0, in the order made.
type announcement struct {
	jti string
	exp int64
	at  int64 // when it was made, Unix nanoseconds
}

// announcementLog is the bounded history watches read, guarded by the
// Store's mu. It is written only while a watch runs: a new watch starts at
// its end, so nothing written before one starts is ever read.
type announcementLog struct {
	max      int
	ring     []announcement // grows to max, then wraps
	next     uint64         // seq of the next announcement: how many were ever made
	watches  int            // Watch calls running
	cut      bool           // CutWatches in force
	news     chan struct{}  // closed and replaced when next, cut or closed change
	closedCh bool           // Close was called: news is closed for good
	cuts     int            // CutWatches not restored yet
}

// first returns the seq of the oldest announcement held.
func (l *announcementLog) first() uint64 { return l.next - uint64(len(l.ring)) }

// at returns the announcement with sequence number seq, which is held.
func (l *announcementLog) at(seq uint64) announcement { return l.ring[seq%uint64(l.max)] }

// announceLocked logs that jti is revoked until exp, if a watch runs, and
// wakes the watches. s.mu is held for writing.
func (s *Store) announceLocked(jti string, exp, now int64) {
	l := &s.log
	if l.watches == 0 {
		return
	}
	a := announcement{jti: jti, exp: exp, at: now}
	if len(l.ring) < l.max {
		l.ring = append(l.ring, a)
	} else {
		l.ring[l.next%uint64(l.max)] = a
	}
	l.next++
	s.wakeLocked()
}

// wakeLocked wakes every watch waiting for news. s.mu is held for writing.
func (s *Store) wakeLocked() {
	if s.log.closedCh {
		return
	}
	close(s.log.news)
	s.log.news = make(chan struct{})
}

// CutWatches makes every watch of s, running or started later, act as if
// its connection to a server were cut, until restore is called: each
// reports Lost (a watch started while cut reports Lost first), and
// announces nothing while the store goes on working. After restore each
// delivers what was revoked meanwhile and reports Resumed, or, when more
// than WithLogMaxLen revocations were made meanwhile, reports Synced
// without them, as a watch of redisstore does when Redis trimmed its
// stream; a watch started while cut reports Synced. It lets tests of a
// subscriber (package cached, say) drive every event of a watch in
// process. restore is idempotent.
func (s *Store) CutWatches() (restore func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.cuts++
	s.log.cut = true
	s.wakeLocked()
	var done bool
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if done {
			return
		}
		done = true
		s.log.cuts--
		if s.log.cuts == 0 {
			s.log.cut = false
			s.wakeLocked()
		}
	}
}

// Watch implements blocklist.WatchStore with an in-process log of the
// revocations that change the store (a Revoke that does not extend a
// revocation announces nothing), bounded by WithLogMaxLen. Event.Announced
// is when the revocation was made (time.Now). It waits on a channel, so it
// costs nothing while idle, returns as soon as ctx is done, and runs under
// testing/synctest. After Close it returns an error wrapping
// blocklist.ErrClosed.
func (s *Store) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	if fn == nil {
		return errors.New("memorystore: watch: nil function")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memorystore: watch: %w", err)
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return fmt.Errorf("memorystore: watch: %w", blocklist.ErrClosed)
	}
	s.log.watches++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.log.watches--; s.log.watches == 0 {
			s.log.ring = nil // nothing will read it: free the ids it holds
		}
		s.mu.Unlock()
	}()

	var (
		pos    uint64 // seq of the next announcement to deliver
		synced bool   // pos is meaningful
		lost   bool   // Lost reported, and neither Resumed nor Synced since
		batch  []announcement
	)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memorystore: watch: %w", err)
		}
		var report blocklist.EventKind // a state change to report, or 0
		batch = batch[:0]
		s.mu.Lock()
		l := &s.log
		switch {
		case s.closed.Load():
			s.mu.Unlock()
			return fmt.Errorf("memorystore: watch: %w", blocklist.ErrClosed)
		case l.cut:
			if !lost {
				lost, report = true, blocklist.Lost
			}
		case !synced || pos < l.first():
			// Never synced, or the log no longer holds what this watch
			// has not read: start again from its end.
			pos, synced, lost, report = l.next, true, false, blocklist.Synced
		default:
			for ; pos < l.next && len(batch) < watchBatch; pos++ {
				batch = append(batch, l.at(pos))
			}
			if lost && pos == l.next {
				lost, report = false, blocklist.Resumed
			}
		}
		idle := l.cut || synced && !lost && pos == l.next // nothing left to do until news
		news := l.news
		s.mu.Unlock()

		now := unixNano(time.Now())
		for _, a := range batch {
			if a.exp > now {
				fn(blocklist.Event{Kind: blocklist.Revoked, JTI: a.jti, Exp: time.Unix(0, a.exp), Announced: time.Unix(0, a.at)})
			}
		}
		if report != 0 {
			fn(blocklist.Event{Kind: report})
		}
		if !idle {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("memorystore: watch: %w", ctx.Err())
		case <-news:
		}
	}
}

// ScanRevoked implements blocklist.ScanStore. It copies the live entries
// under the read lock, O(n) time and memory, and calls fn after releasing
// it, so fn may call the Store.
func (s *Store) ScanRevoked(ctx context.Context, fn func(jti string, until time.Time) error) error {
	if fn == nil {
		return errors.New("memorystore: scan revoked: nil function")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memorystore: scan revoked: %w", err)
	}
	if s.closed.Load() {
		return fmt.Errorf("memorystore: scan revoked: %w", blocklist.ErrClosed)
	}
	now := unixNano(time.Now())
	s.mu.RLock()
	live := make([]announcement, 0, len(s.entries))
	for jti, exp := range s.entries {
		if exp > now {
			live = append(live, announcement{jti: jti, exp: exp})
		}
	}
	s.mu.RUnlock()
	for i, a := range live {
		if i%watchBatch == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("memorystore: scan revoked: %w", err)
			}
		}
		if err := fn(a.jti, time.Unix(0, a.exp)); err != nil {
			return err
		}
	}
	return nil
}
