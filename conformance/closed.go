package conformance

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
)

// testClosed checks a store that has a Close method (an io.Closer). After
// Close a store may refuse every call, with an error wrapping
// blocklist.ErrClosed, or keep answering (a cache whose Close only stops a
// background watch); what it may never do is panic, or answer "not revoked"
// without an error for an id revoked before Close: a closed store that
// answers (false, nil) lets a logged-out token back in. Closing twice must
// not panic either: callers close in defers and cleanups.
func testClosed(t *testing.T, s blocklist.Store) {
	c, ok := s.(io.Closer)
	if !ok {
		t.Skip("not an io.Closer")
	}
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	revoke(t, s, "before-close", exp)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// after checks one call made after Close: an error wraps ErrClosed, a
	// nil error comes with the right answer.
	after := func(name string, err error, right bool) {
		t.Helper()
		switch {
		case err != nil && !errors.Is(err, blocklist.ErrClosed):
			t.Errorf("%s after Close: error %v, want one wrapping blocklist.ErrClosed", name, err)
		case err == nil && !right:
			t.Errorf("%s after Close answered wrong without an error: a closed store must refuse (ErrClosed) or still answer right", name)
		}
	}
	noPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("%s after Close panicked: %v", name, p)
			}
		}()
		f()
	}
	noPanic("Revoke", func() {
		err := s.Revoke(ctx, "after-close", exp)
		after("Revoke", err, true)
	})
	noPanic("IsRevoked", func() {
		revoked, err := s.IsRevoked(ctx, "before-close")
		after("IsRevoked", err, revoked)
	})
	if es, ok := s.(blocklist.ExpiryStore); ok {
		noPanic("RevokedUntil", func() {
			until, err := es.RevokedUntil(ctx, "before-close")
			after("RevokedUntil", err, !until.IsZero())
		})
	}
	if bs, ok := s.(blocklist.BatchStore); ok {
		noPanic("RevokedUntilEach", func() {
			until := make([]time.Time, 2)
			err := bs.RevokedUntilEach(ctx, []string{"before-close", "never"}, until)
			after("RevokedUntilEach", err, !until[0].IsZero() && until[1].IsZero())
		})
	}
	if os, ok := s.(blocklist.OnceStore); ok {
		noPanic("RevokeOnce", func() {
			first, err := os.RevokeOnce(ctx, "before-close", exp)
			if err != nil && first {
				t.Errorf("RevokeOnce after Close = true, %v: an error must come with false", err)
			}
			after("RevokeOnce", err, !first)
		})
	}
	if ss, ok := s.(blocklist.ScanStore); ok {
		noPanic("ScanRevoked", func() {
			found := false
			err := ss.ScanRevoked(ctx, func(jti string, _ time.Time) error {
				found = found || jti == "before-close"
				return nil
			})
			if !errors.Is(err, errors.ErrUnsupported) { // a wrapper over a store that cannot list
				after("ScanRevoked", err, found)
			}
		})
	}
	noPanic("a second Close", func() { _ = c.Close() })
}
