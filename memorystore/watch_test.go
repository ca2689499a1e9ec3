package memorystore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// watcher runs s.Watch until the test ends and records its events.
type watcher struct {
	events []blocklist.Event
	done   chan error
	cancel context.CancelFunc
}

// watch starts a watch of s; call it inside a synctest bubble, and
// synctest.Wait before reading events.
func watch(t *testing.T, s *memorystore.Store) *watcher {
	ctx, cancel := context.WithCancel(t.Context())
	w := &watcher{done: make(chan error, 1), cancel: cancel}
	go func() { w.done <- s.Watch(ctx, func(ev blocklist.Event) { w.events = append(w.events, ev) }) }()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// take returns the events recorded since the last take, as "Kind" or
// "Revoked:jti", once every goroutine of the bubble is blocked.
func (w *watcher) take() []string {
	synctest.Wait()
	var out []string
	for _, ev := range w.events {
		if ev.Kind == blocklist.Revoked {
			out = append(out, "Revoked:"+ev.JTI)
		} else {
			out = append(out, ev.Kind.String())
		}
	}
	w.events = nil
	return out
}

func want(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func revokeN(t *testing.T, s *memorystore.Store, prefix string, n int) []string {
	t.Helper()
	var events []string
	for i := range n {
		jti := fmt.Sprint(prefix, i)
		if err := s.Revoke(context.Background(), jti, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		events = append(events, "Revoked:"+jti)
	}
	return events
}

func TestWatchReportsChangesInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New()
		defer s.Close()
		ctx := context.Background()
		w := watch(t, s)
		want(t, w.take(), "Synced")

		exp := time.Now().Add(time.Hour)
		s.Revoke(ctx, "a", exp)
		s.Revoke(ctx, "a", exp.Add(-time.Minute)) // no change: not announced
		s.Revoke(ctx, "past", time.Now().Add(-time.Second))
		s.RevokeOnce(ctx, "b", exp)
		s.RevokeOnce(ctx, "b", exp.Add(time.Hour)) // lost the race: not announced
		s.Revoke(ctx, "a", exp.Add(time.Minute))   // extended: announced
		want(t, w.take(), "Revoked:a", "Revoked:b", "Revoked:a")
	})
}

func TestWatchEventsCarryExactExp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New()
		defer s.Close()
		var got []blocklist.Event
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Watch(ctx, func(ev blocklist.Event) { got = append(got, ev) }) }()
		synctest.Wait()
		exp := time.Now().Add(90 * time.Minute)
		s.Revoke(context.Background(), "a", exp)
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch after cancel = %v, want context.Canceled", err)
		}
		if len(got) != 2 || got[1].JTI != "a" || !got[1].Exp.Equal(exp) || !got[1].Announced.Equal(time.Now()) {
			t.Fatalf("events %+v, want Synced then a revoked until %s, announced now", got, exp)
		}
	})
}

func TestWatchCutAndRestoreResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New(memorystore.WithLogMaxLen(10))
		defer s.Close()
		w := watch(t, s)
		want(t, w.take(), "Synced")

		restore := s.CutWatches()
		want(t, w.take(), "Lost")
		made := revokeN(t, s, "during-", 10) // exactly what the log holds
		want(t, w.take())                    // nothing while cut
		restore()
		restore() // idempotent
		want(t, w.take(), append(made, "Resumed")...)

		made = revokeN(t, s, "after-", 3)
		want(t, w.take(), made...)
	})
}

func TestWatchGapReportsSynced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New(memorystore.WithLogMaxLen(10))
		defer s.Close()
		w := watch(t, s)
		want(t, w.take(), "Synced")

		restore := s.CutWatches()
		revokeN(t, s, "during-", 11) // one more than the log holds
		want(t, w.take(), "Lost")
		restore()
		want(t, w.take(), "Synced")
		made := revokeN(t, s, "after-", 2)
		want(t, w.take(), made...)
	})
}

// A watch whose fn is slow falls behind; once more than the log holds was
// made meanwhile, it reports Synced instead of what it missed.
func TestWatchSlowSubscriberReportsSynced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New(memorystore.WithLogMaxLen(5))
		defer s.Close()
		release := make(chan struct{})
		var got []string
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go s.Watch(ctx, func(ev blocklist.Event) {
			got = append(got, ev.Kind.String()+":"+ev.JTI)
			if ev.JTI == "first" {
				<-release // fn is slow
			}
		})
		synctest.Wait()
		s.Revoke(context.Background(), "first", time.Now().Add(time.Hour))
		synctest.Wait()
		revokeN(t, s, "behind-", 6)
		close(release)
		synctest.Wait()
		want(t, got, "Synced:", "Revoked:first", "Synced:")
	})
}

func TestWatchStartedWhileCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New()
		defer s.Close()
		restore := s.CutWatches()
		w := watch(t, s)
		want(t, w.take(), "Lost")
		revokeN(t, s, "during-", 2)
		restore()
		want(t, w.take(), "Synced")
	})
}

func TestWatchNestedCuts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New()
		defer s.Close()
		w := watch(t, s)
		want(t, w.take(), "Synced")
		r1, r2 := s.CutWatches(), s.CutWatches()
		want(t, w.take(), "Lost")
		r1()
		want(t, w.take()) // still cut by the second
		r2()
		want(t, w.take(), "Resumed")
	})
}

func TestWatchExpiredAnnouncementsAreNotReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New()
		defer s.Close()
		w := watch(t, s)
		want(t, w.take(), "Synced")
		restore := s.CutWatches()
		s.Revoke(context.Background(), "short", time.Now().Add(time.Second))
		s.Revoke(context.Background(), "long", time.Now().Add(time.Hour))
		time.Sleep(2 * time.Second)
		restore()
		want(t, w.take(), "Lost", "Revoked:long", "Resumed")
	})
}

func TestWatchEndsOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memorystore.New()
		done := make(chan error, 1)
		go func() { done <- s.Watch(context.Background(), func(blocklist.Event) {}) }()
		synctest.Wait()
		s.Close()
		if err := <-done; !errors.Is(err, blocklist.ErrClosed) {
			t.Fatalf("Watch after Close = %v, want ErrClosed", err)
		}
		if err := s.Watch(context.Background(), func(blocklist.Event) {}); !errors.Is(err, blocklist.ErrClosed) {
			t.Fatalf("Watch of a closed store = %v, want ErrClosed", err)
		}
	})
}

func TestWatchNilFunc(t *testing.T) {
	s := memorystore.New()
	defer s.Close()
	if err := s.Watch(context.Background(), nil); err == nil {
		t.Fatal("Watch(nil) = nil, want an error")
	}
	if err := s.ScanRevoked(context.Background(), nil); err == nil {
		t.Fatal("ScanRevoked(nil) = nil, want an error")
	}
}

// An invalid option value is a programming error: New panics, naming it.
func TestInvalidOptionsPanic(t *testing.T) {
	for name, opt := range map[string]memorystore.Option{
		"WithLogMaxLen(0)":       memorystore.WithLogMaxLen(0),
		"WithSweepInterval(-1s)": memorystore.WithSweepInterval(-time.Second),
	} {
		func() {
			defer func() {
				p := recover()
				if msg := fmt.Sprint(p); p == nil || !strings.HasPrefix(msg, "memorystore: "+name) {
					t.Errorf("New(%s) recovered %v, want a panic naming the option", name, p)
				}
			}()
			memorystore.New(opt)
		}()
	}
}

// ScanRevoked releases its lock before calling fn, so fn may use the
// store.
func TestScanFnMayCallTheStore(t *testing.T) {
	s := memorystore.New()
	defer s.Close()
	ctx := context.Background()
	revokeN(t, s, "id-", 5)
	n := 0
	err := s.ScanRevoked(ctx, func(jti string, until time.Time) error {
		n++
		return s.Revoke(ctx, "more-"+jti, until)
	})
	if err != nil || n != 5 {
		t.Fatalf("ScanRevoked = %v after %d ids, want nil after 5", err, n)
	}
}
