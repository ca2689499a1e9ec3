package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// topologyGrace is how long a Cluster watch waits, once the set of
// masters' streams has changed (a resharding moved a master's lowest
// slot), before it reads the new set: longer than a writer's map of
// streams may be old when it announces (streamMapStaleAge), so no write
// made after the watch's Synced announces on a stream the watch does not
// read.
const topologyGrace = 2 * streamMapMaxAge

// watchCluster is Watch on Cluster, where each master announces on a
// stream of its own (see slots.go): it reads the topology (CLUSTER NODES),
// watches each master's stream with watchStream (its own connection to
// that master, its own proofs) and merges their events (clusterWatch). It
// reads the topology again every streamMapMaxAge; when a slot has moved
// (the set of streams changed, or a master's config epoch rose: a slot
// moved away and back in between would leave the set as it was, after
// writers announced on streams this watch never read) it reports Lost,
// waits topologyGrace, and starts over on the new set, which ends in
// Synced.
func (s *Store) watchCluster(ctx context.Context, fn func(blocklist.Event)) error {
	agg := &clusterWatch{fn: fn}
	var backoff time.Duration
	for {
		topo, err := s.streams.readTopology(ctx)
		if err == nil {
			backoff = 0
			err = s.watchStreams(ctx, topo, agg)
			if err == nil {
				// A slot moved.
				agg.lose()
				backoff = topologyGrace
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redisstore: watch: %w", ctx.Err())
		}
		var ended *streamWatchEnded
		if errors.As(err, &ended) {
			return ended.err // a stream's watch gave up: retrying cannot fix it
		}
		if isNoPerm(err) {
			// The user may not read the topology: retrying cannot help.
			return fmt.Errorf("redisstore: watch: %w", err)
		}
		if err != nil {
			// CLUSTER NODES failed: as a stream's watch does, report
			// Lost and try again.
			s.noteFailure(err)
			agg.lose()
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
		}
		if err := waitBackoff(ctx, backoff); err != nil {
			return err
		}
	}
}

// streamWatchEnded is the error of a stream's watch that ended by itself,
// for an error retrying cannot fix.
type streamWatchEnded struct{ err error }

func (e *streamWatchEnded) Error() string { return e.err.Error() }
func (e *streamWatchEnded) Unwrap() error { return e.err }

// streamEvent is an event of one master's stream, handed to the goroutine
// that calls the subscriber; done is signalled once it was handled.
type streamEvent struct {
	i    int
	ev   blocklist.Event
	done chan struct{}
}

// watchStreams watches the streams of topo, each with watchStream, until ctx
// is done (it returns ctx's error), a watch ends by itself (its error), or
// a reading of the topology shows a slot moved since topo (nil). Events
// reach agg, and through it the subscriber, from the calling goroutine, one
// at a time; a stream's watch waits while its event is handled, so the
// time its subscriber takes is counted as its own.
func (s *Store) watchStreams(ctx context.Context, topo *topology, agg *clusterWatch) error {
	keys := topo.keys
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan streamEvent)
	ended := make(chan error, len(keys))
	for i, key := range keys {
		// A Store whose one stream is this master's: watchStream, and the
		// connection it dials (to the master owning the stream's slot),
		// are those of a single stream.
		one := *s
		one.stream, one.streams = key, nil
		done := make(chan struct{}, 1)
		go func() {
			ended <- one.watchStream(wctx, func(ev blocklist.Event) {
				select {
				case events <- streamEvent{i: i, ev: ev, done: done}:
				case <-wctx.Done():
					return
				}
				select {
				case <-done:
				case <-wctx.Done():
				}
			})
		}()
	}
	// CLUSTER NODES may go to a node that is down and take a while: read
	// it beside the events, never in their way.
	changed, polled := make(chan struct{}), make(chan struct{})
	running := len(keys)
	stop := func() {
		cancel()
		for ; running > 0; running-- {
			<-ended
		}
		<-polled
	}
	defer stop()
	go func() {
		defer close(polled)
		tick := time.NewTicker(streamMapMaxAge)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			// An error is for the streams' watches to report.
			if next, err := s.streams.readTopology(wctx); err == nil && topo.moved(next) {
				close(changed)
				return
			}
		}
	}()
	agg.start(len(keys))
	for {
		select {
		case se := <-events:
			if agg.resumes(se.i, se.ev) {
				// Each stream proved it missed nothing, but a slot moved
				// away and back while one was lost (the usual way a
				// stream is lost in a resharding) leaves no trace in the
				// streams: writers announced meanwhile on streams none of
				// them reads. Resumed only if the topology did not move;
				// if it did, or cannot be read, start over (Synced).
				if next, err := s.streams.readTopology(wctx); err != nil || topo.moved(next) {
					se.done <- struct{}{}
					return nil
				}
			}
			agg.handle(se.i, se.ev)
			se.done <- struct{}{}
		case err := <-ended:
			running--
			if ctx.Err() != nil {
				return fmt.Errorf("redisstore: watch: %w", ctx.Err())
			}
			return &streamWatchEnded{err}
		case <-changed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("redisstore: watch: %w", ctx.Err())
		}
	}
}

// clusterState is what a Cluster watch last told its subscriber.
type clusterState int

const (
	clusterStarting clusterState = iota // nothing yet
	clusterLive                         // Synced or Resumed, no Lost since
	clusterLost                         // Lost, neither Synced nor Resumed since
)

// clusterWatch merges the events of the watches of the masters' streams
// into those of one watch:
//   - Revoked is passed on at once, from any stream, once the subscriber
//     has had its first Synced or Lost;
//   - Lost as soon as one stream is lost (once, until the next Synced or
//     Resumed);
//   - once every stream is live again: Resumed if each stream lost since
//     proved that it missed nothing (reported Resumed), Synced if any
//     stream started over (reported Synced: a first start, a gap, a new
//     set of streams).
//
// Revocations of one id are announced on one stream (the master owning its
// key), so they are reported in order; revocations of ids on different
// masters may be reported in another order than they were made.
// Announcements read before the first Synced are not passed on: each
// follows its key's write on the same master, so the subscriber, which
// reloads or distrusts what it holds on Synced, reads their keys then.
type clusterWatch struct {
	fn     func(blocklist.Event)
	state  clusterState
	live   []bool // per stream
	resync bool   // a stream started over since the last Synced
}

// start begins a new set of n streams, none live yet.
func (a *clusterWatch) start(n int) {
	a.live = make([]bool, n)
	a.resync = true
}

func (a *clusterWatch) handle(i int, ev blocklist.Event) {
	switch ev.Kind {
	case blocklist.Revoked:
		if a.state != clusterStarting {
			a.fn(ev)
		}
	case blocklist.Lost:
		a.live[i] = false
		a.lose()
	case blocklist.Synced:
		a.live[i] = true
		a.resync = true
		a.settle()
	case blocklist.Resumed:
		a.live[i] = true
		a.settle()
	}
}

// resumes reports whether handling ev, of stream i, would report Resumed.
func (a *clusterWatch) resumes(i int, ev blocklist.Event) bool {
	if ev.Kind != blocklist.Resumed || a.resync || a.state != clusterLost {
		return false
	}
	for j, live := range a.live {
		if j != i && !live {
			return false
		}
	}
	return true
}

// lose reports Lost unless it is the last thing reported.
func (a *clusterWatch) lose() {
	if a.state != clusterLost {
		a.state = clusterLost
		a.fn(blocklist.Event{Kind: blocklist.Lost})
	}
}

// settle reports Synced or Resumed once every stream is live.
func (a *clusterWatch) settle() {
	for _, live := range a.live {
		if !live {
			return
		}
	}
	switch {
	case a.resync:
		a.fn(blocklist.Event{Kind: blocklist.Synced})
	case a.state == clusterLost:
		a.fn(blocklist.Event{Kind: blocklist.Resumed})
	default:
		return
	}
	a.state, a.resync = clusterLive, false
}
