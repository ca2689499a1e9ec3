package cached_test

// Attacks on the one lookup path (lookup.go): what a check may take from a
// lookup that another check started.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// A check that joins a lookup in flight gets an answer read before it
// began. That answer must be no staler than a cached one would be: a
// "not revoked" read by a lookup that started more than the TTL of "not
// revoked" answers before the check is not shared with it, whatever the
// path (single or batch) and whether the TTL is NegativeTTL (no watch) or
// WatchNegativeTTL (watch live, a revocation written without its
// announcement). Here the lookup is slow (2 s, within the default
// WithLookupTimeout of 5 s), the TTL 1 s, and the id is revoked 0.5 s after
// the lookup read it: a check begun 1.5 s after the revocation must see
// it.
func TestSharedAnswerKeepsStalenessBound(t *testing.T) {
	for _, watch := range []bool{false, true} {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("watch=%v/batch=%v", watch, batch), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { testSharedStaleness(t, watch, batch) })
			})
		}
	}
}

func testSharedStaleness(t *testing.T, watch, batch bool) {
	ctx := context.Background()
	data, feed := newMemory(t), newMemory(t)
	h := &heldStore{Store: data, release: make(chan struct{})}
	opts := []cached.Option{cached.WithNegativeTTL(time.Second), cached.WithWatchNegativeTTL(time.Second)}
	var c *cached.Store
	if watch {
		c = newCached(t, heldUnannounced{h, feed}, opts...)
	} else {
		c = newCached(t, h, append(opts, cached.WithoutWatch())...)
	}
	synctest.Wait()
	check := func() bool {
		if batch {
			until := make([]time.Time, 2)
			if err := c.RevokedUntilEach(ctx, []string{"x", "x"}, until); err != nil {
				t.Error(err)
			}
			return !until[0].IsZero() && !until[1].IsZero()
		}
		got, err := c.IsRevoked(ctx, "x")
		if err != nil {
			t.Error(err)
		}
		return got
	}
	first, second := make(chan bool, 1), make(chan bool, 1)
	go func() { first <- check() }()
	synctest.Wait() // its lookup read "not revoked" and is held
	time.Sleep(500 * time.Millisecond)
	mustRevoke(t, data, "x", time.Now().Add(time.Hour)) // elsewhere, unannounced
	time.Sleep(1500 * time.Millisecond)
	go func() { second <- check() }()
	synctest.Wait()
	close(h.release)
	<-first // began before the revocation: either answer is right
	if !<-second {
		t.Error("a check begun 1.5 s after the revocation answered \"not revoked\" from a lookup that read the store 2 s before it began; the TTL of \"not revoked\" is 1 s")
	}
}

// heldUnannounced is a heldStore whose watch reads another memorystore, so
// that revocations written into the held one are not announced.
type heldUnannounced struct {
	*heldStore
	feed *memorystore.Store
}

func (u heldUnannounced) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	return u.feed.Watch(ctx, fn)
}

// panicStore is a memorystore whose lookups of "boom" panic, after
// waiting until release is closed (so that checks can join them).
type panicStore struct {
	*memorystore.Store
	release chan struct{}
}

func (p *panicStore) RevokedUntil(ctx context.Context, jti string) (time.Time, error) {
	if jti == "boom" {
		<-p.release
		panic("panicstore: boom")
	}
	return p.Store.RevokedUntil(ctx, jti)
}

func (p *panicStore) RevokedUntilEach(ctx context.Context, jtis []string, until []time.Time) error {
	for _, jti := range jtis {
		if jti == "boom" {
			<-p.release
			panic("panicstore: boom")
		}
	}
	return p.Store.RevokedUntilEach(ctx, jtis, until)
}

// A next Store that panics in a lookup panics in every check waiting for
// that lookup, as a direct call would (net/http then recovers it for the
// request, and fails it), instead of in the lookup's own goroutine, which
// nothing can recover and which ends the process; no check is left
// waiting, the lookup is not shared after it, and nothing is cached.
func TestNextStorePanicReachesEveryWaiter(t *testing.T) {
	for _, watch := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch=%v", watch), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &panicStore{Store: newMemory(t), release: make(chan struct{})}
				var opts []cached.Option
				if !watch {
					opts = append(opts, cached.WithoutWatch())
				}
				c := newCached(t, p, opts...)
				synctest.Wait()
				ctx := context.Background()
				checks := []func(){
					func() { _, _ = c.IsRevoked(ctx, "boom") },
					func() { _, _ = c.RevokedUntil(ctx, "boom") },
					func() { _ = c.RevokedUntilEach(ctx, []string{"fine", "boom"}, make([]time.Time, 2)) },
				}
				panics := make(chan any, len(checks))
				for _, check := range checks {
					go func() {
						defer func() { panics <- recover() }()
						check()
					}()
					synctest.Wait()
				}
				close(p.release)
				for range checks {
					if v := <-panics; v == nil {
						t.Error("a check of an id whose lookup panicked returned without panicking")
					} else if msg := fmt.Sprint(v); !strings.Contains(msg, "panicstore: boom") {
						t.Errorf("panic %q does not carry the next Store's", msg)
					}
				}
				// The next check of it asks again (and panics again); another id is fine.
				func() {
					defer func() {
						if recover() == nil {
							t.Error("the check after the panic did not ask the next Store again")
						}
					}()
					_, _ = c.IsRevoked(ctx, "boom")
				}()
				mustRevoked(t, c, "fine", false, "never revoked")
				if st := c.Stats(); st.Errors != 2 {
					t.Errorf("Stats.Errors = %d after two lookups that panicked, want 2", st.Errors)
				}
			})
		})
	}
}
