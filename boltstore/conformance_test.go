package boltstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/conformance"
)

// TestConformance runs the suite on stores made by Open, one file each. The
// unavailable store is one made by New whose caller closed the database
// under it. (Stores made by New run the same code on other bucket names;
// TestNewSharesDB covers what differs.)
func TestConformance(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		s, _ := open(t)
		return s
	}, conformance.WithUnavailable(func(t *testing.T) blocklist.Store {
		db := openDB(t, filepath.Join(t.TempDir(), "closed.db"))
		s, err := boltstore.New(db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db.Close()
		return s
	}))
}

// TestConformanceBusySweeper runs the suite with a sweeper that runs every
// few milliseconds, so that it races with Revoke and lookups while entries
// expire and are extended; with the default interval of a minute it never
// runs during the suite.
func TestConformanceBusySweeper(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		s, _ := open(t, boltstore.WithSweepInterval(5*time.Millisecond))
		return s
	})
}
