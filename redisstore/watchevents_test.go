package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// watchRun is w.Watch running in its own goroutine until stop.
type watchRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Watch returned; err is set then
	err    error
}

// startWatch runs w.Watch(ctx, fn) in a goroutine. The caller defers stop.
func startWatch(ctx context.Context, w *redisstore.Store, fn func(blocklist.Event)) *watchRun {
	watchCtx, cancel := context.WithCancel(ctx)
	r := &watchRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = w.Watch(watchCtx, fn)
	}()
	return r
}

// stop ends the watch and waits until Watch returned.
func (r *watchRun) stop() {
	r.cancel()
	<-r.done
}

// eventStream is a watch whose events go into a buffered channel, for
// tests that wait on events one after another.
type eventStream struct {
	*watchRun
	t *testing.T
	// C holds the events not yet taken by waitFor; a test may read it
	// directly for its own loops.
	C chan blocklist.Event
}

// watchEvents starts w.Watch with a callback that sends every event into
// a channel of the given buffer, then runs also, if not nil. The caller
// defers stop.
func watchEvents(t *testing.T, ctx context.Context, w *redisstore.Store, buffer int, also func(blocklist.Event)) *eventStream {
	s := &eventStream{t: t, C: make(chan blocklist.Event, buffer)}
	s.watchRun = startWatch(ctx, w, func(ev blocklist.Event) {
		s.C <- ev
		if also != nil {
			also(ev)
		}
	})
	return s
}

// waitFor takes events until ok holds for one, which it returns with the
// time it was taken; it fails the test with "no <what> within <within>"
// if none does in time, or if Watch returned without one.
func (s *eventStream) waitFor(what string, ok func(blocklist.Event) bool, within time.Duration) (blocklist.Event, time.Time) {
	s.t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case ev := <-s.C:
			if ok(ev) {
				return ev, time.Now()
			}
		case <-s.done:
			for len(s.C) > 0 {
				if ev := <-s.C; ok(ev) {
					return ev, time.Now()
				}
			}
			s.t.Fatalf("no %s: Watch returned: %v", what, s.err)
		case <-timer.C:
			s.t.Fatalf("no %s within %v", what, within)
		}
	}
}

// isKind is a waitFor predicate: an event of kind k.
func isKind(k blocklist.EventKind) func(blocklist.Event) bool {
	return func(ev blocklist.Event) bool { return ev.Kind == k }
}

// pollUntil checks cond every 10 ms until it holds, or fails the test with
// "no <what> within <within>".
func pollUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
	}
}
