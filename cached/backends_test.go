package cached_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/conformance"
	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/memcachestore"
)

// The suite over the other backends: each converts exps to its own clock
// (bolt's milliseconds, memcached's 32-bit seconds beside the value's
// milliseconds), and the cache to nanoseconds on top; FarFuture and
// Monotonic hold through both.

func TestConformanceBolt(t *testing.T) {
	t.Parallel()
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		next, err := boltstore.Open(filepath.Join(t.TempDir(), "blocklist.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { next.Close() })
		return newCached(t, next)
	})
}

func TestConformanceMemcached(t *testing.T) {
	t.Parallel()
	client := memcache.New(testserver.Memcached(t).Addr())
	client.Timeout = 5 * time.Second
	var n atomic.Int64
	conformance.Run(t, func(t *testing.T) blocklist.Store {
		prefix := fmt.Sprintf("cached-test-%d:", n.Add(1))
		return newCached(t, memcachestore.New(client, memcachestore.WithPrefix(prefix)))
	})
}
