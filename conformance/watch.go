package conformance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// The checks of blocklist.WatchStore. A store that is not one skips them.

// watchBound is how long an announced revocation may take to reach a
// watcher in the suite: generous, for loaded CI machines. The latency
// itself is a benchmark's business.
const watchBound = 2 * time.Second

// WithPeer gives Run a factory for a second instance of the store under
// test: another client of the same backend, seeing the same revocations
// (on a shared server, the same key prefix as s). The Watch subtest then
// watches through the peer what it revokes through s, as two processes of
// one service would. Without it, it watches s itself.
func WithPeer(newPeer func(t *testing.T, s blocklist.Store) blocklist.Store) Option {
	return func(c *config) { c.newPeer = newPeer }
}

// watching runs Watch on w until the test ends, sending its events to the
// returned channel, and the error Watch returned to the second one.
func watching(t *testing.T, w blocklist.WatchStore) (<-chan blocklist.Event, <-chan error, context.CancelFunc) {
	t.Helper()
	events := make(chan blocklist.Event, 10_000)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- w.Watch(ctx, func(ev blocklist.Event) {
			select {
			case events <- ev:
			default: // the test stopped reading
			}
		})
	}()
	t.Cleanup(cancel)
	return events, done, cancel
}

// next returns the next event that is not a repeat of a revocation in seen,
// or fails the test after watchBound.
func nextEvent(t *testing.T, events <-chan blocklist.Event, what string) blocklist.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(watchBound):
		t.Fatalf("no event within %s while waiting for %s", watchBound, what)
		return blocklist.Event{}
	}
}

// testWatch checks that revocations made through one instance are reported
// to a watcher, with their exact ids and exps, in order per id, after Synced; that
// a past exp is not reported; and that Watch honours its context.
func testWatch(t *testing.T, s blocklist.Store, cfg config) {
	if _, ok := s.(blocklist.WatchStore); !ok {
		t.Skip("not a blocklist.WatchStore")
	}
	watched := s
	if cfg.newPeer != nil {
		watched = cfg.newPeer(t, s)
	}
	w, ok := watched.(blocklist.WatchStore)
	if !ok {
		t.Fatalf("the peer (%T) of a WatchStore is not one", watched)
	}
	events, done, cancel := watching(t, w)
	if ev := nextEvent(t, events, "Synced"); ev.Kind != blocklist.Synced {
		t.Fatalf("first event = %s, want Synced", ev.Kind)
	}

	// Each revocation is reported, the past one is not. Each id is revoked
	// once here, and the contract orders revocations per id only (a
	// backend may report different ids in another order than made).
	exp := time.Now().Add(time.Hour)
	ids := oddIDs()
	pending := make(map[string]bool, len(ids))
	seen := make(map[string]bool, len(ids))
	for i, jti := range ids {
		if i == len(ids)/2 {
			revoke(t, s, "past", time.Now().Add(-time.Second))
		}
		revoke(t, s, jti, exp)
		pending[jti] = true
	}
	for len(pending) > 0 {
		var next string
		for next = range pending {
			break
		}
		ev := nextEvent(t, events, "the revocation of "+quote(next)+" and "+strconv.Itoa(len(pending)-1)+" more")
		switch {
		case ev.Kind != blocklist.Revoked:
			t.Fatalf("event %s while waiting for the revocation of %s", ev.Kind, quote(next))
		case ev.JTI == "past":
			t.Fatal("a revocation with a past exp was reported")
		case !pending[ev.JTI] && !seen[ev.JTI]:
			t.Fatalf("a revocation of %s was reported, which was not made", quote(ev.JTI))
		case ev.Exp.Before(exp.Truncate(time.Millisecond)) || ev.Exp.After(exp.Add(time.Second)):
			t.Fatalf("revocation of %s reported with Exp %s, want %s (to the millisecond, at most 1s later)",
				quote(ev.JTI), ev.Exp.Format(time.RFC3339Nano), exp.Format(time.RFC3339Nano))
		}
		delete(pending, ev.JTI) // reported again: allowed
		seen[ev.JTI] = true
	}

	// Revocations of one id are reported in the order made: each later
	// exp extends the entry, and a watcher applying the events in the
	// order received ends with the last one.
	const again = "again"
	exps := []time.Time{exp.Add(time.Hour), exp.Add(2 * time.Hour), exp.Add(3 * time.Hour)}
	for _, e := range exps {
		revoke(t, s, again, e)
	}
	for next := 0; next < len(exps); {
		ev := nextEvent(t, events, fmt.Sprintf("revocation %d of %d of %q", next+1, len(exps), again))
		switch {
		case ev.Kind != blocklist.Revoked:
			t.Fatalf("event %s while waiting for revocation %d of %q", ev.Kind, next+1, again)
		case ev.JTI != again:
			if !seen[ev.JTI] {
				t.Fatalf("a revocation of %s was reported, which was not made", quote(ev.JTI))
			}
			continue // an earlier one reported again: allowed
		}
		at := -1
		for i, e := range exps {
			if !ev.Exp.Before(e.Truncate(time.Millisecond)) && !ev.Exp.After(e.Add(time.Second)) {
				at = i
			}
		}
		switch {
		case at < 0:
			t.Fatalf("revocation of %q reported with Exp %s, which was never made", again, ev.Exp.Format(time.RFC3339Nano))
		case at > next:
			t.Fatalf("revocation %d of %q reported while waiting for revocation %d: revocations of one id must each be reported, in the order made",
				at+1, again, next+1)
		case at < next-1:
			t.Fatalf("revocation %d of %q reported after revocation %d: revocations of one id must be reported in the order made",
				at+1, again, next)
		case at == next:
			next++
		}
	}

	testWatchStalled(t, s, w)

	// The end of the context ends Watch, with its error.
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch after its context was canceled returned %v, want an error wrapping context.Canceled", err)
		}
	case <-time.After(watchBound):
		t.Fatalf("Watch still running %s after its context was canceled", watchBound)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	start := time.Now()
	if err := w.Watch(canceled, func(blocklist.Event) { t.Error("Watch with a done context reported an event") }); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch with a done context returned %v, want an error wrapping context.Canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Watch with a done context took %s to return", took)
	}
}

// testWatchUnavailable checks that a watch of a backend that cannot answer
// reports Lost (or returns an error) and never Synced or a revocation.
func testWatchUnavailable(t *testing.T, s blocklist.Store, deadline time.Duration) {
	t.Helper()
	w, ok := s.(blocklist.WatchStore)
	if !ok {
		return
	}
	events, done, cancel := watching(t, w)
	defer cancel()
	select {
	case ev := <-events:
		if ev.Kind != blocklist.Lost {
			t.Errorf("Watch of an unavailable backend reported %s first, want Lost", ev.Kind)
		}
	case err := <-done:
		if err == nil {
			t.Error("Watch of an unavailable backend returned nil")
		}
		return
	case <-time.After(deadline):
		t.Errorf("Watch of an unavailable backend reported nothing within %s, want Lost", deadline)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(watchBound):
		t.Errorf("Watch of an unavailable backend still running %s after its context was canceled", watchBound)
	}
}

// testWatchStalled checks the events of a watch whose subscriber stalls
// while revocations are made: once it returns, every one of them is
// reported, unless the watch reports Synced (a gap it could not replay);
// Resumed comes only after a Lost.
func testWatchStalled(t *testing.T, s blocklist.Store, w blocklist.WatchStore) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	events := make(chan blocklist.Event, 10_000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		first := true
		done <- w.Watch(ctx, func(ev blocklist.Event) {
			if first {
				first = false
				<-gate // stall on the first event, whatever it is
			}
			select {
			case events <- ev:
			default:
			}
		})
	}()
	defer func() {
		release()
		cancel()
		<-done
	}()
	time.Sleep(50 * time.Millisecond) // let the watch start and stall
	exp := time.Now().Add(time.Hour)
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("stalled-%d", i)
		revoke(t, s, ids[i], exp)
	}
	release()
	seen := map[string]bool{}
	state := blocklist.EventKind(0)
	for missing := len(ids); missing > 0; {
		ev := nextEvent(t, events, fmt.Sprintf("%d revocations made while the subscriber stalled", missing))
		switch ev.Kind {
		case blocklist.Synced:
			return // a gap it reports: the subscriber rebuilds
		case blocklist.Resumed:
			if state != blocklist.Lost {
				t.Fatalf("Resumed after %v, want only after Lost", state)
			}
		case blocklist.Revoked:
			if strings.HasPrefix(ev.JTI, "stalled-") && !seen[ev.JTI] {
				seen[ev.JTI] = true
				missing--
			}
			continue
		}
		state = ev.Kind
	}
}
