package cached

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/memorystore"
)

// replica holds every live revocation of the next Store (WithReplica): it
// loads them with ScanRevoked at each Synced, applies what the watch
// announces, and answers every check while it is ready. Its methods do
// nothing, or report nothing, on a nil *replica, the Store's value outside
// replica mode, so the Store calls them without asking which mode it is in.
type replica struct {
	mem  *memorystore.Store // the revocations, swept as they end
	scan blocklist.ScanStore

	// ready: loaded since the last Synced, and the watch live since; the
	// replica then answers every check (see Store.memory).
	ready atomic.Bool
	// readyAtLoss is whether it was ready when the watch was last lost, so
	// complete then: stale-if-error may answer from it (see Store.stale).
	readyAtLoss atomic.Bool
	loads       atomic.Uint64
	lastLoad    atomic.Int64 // unix nanoseconds of the last complete load; 0 before

	// mu orders the Store's changes of state in replica mode: the watch's
	// events and the end of a load (watch.go), which runs beside the watch.
	mu      sync.Mutex
	stop    context.CancelFunc // of the load running; nil when none runs
	seq     uint64             // loads begun; a load is current while seq is its own
	loaded  bool               // the current load completed
	running sync.WaitGroup     // load goroutines
}

func newReplica(scan blocklist.ScanStore) *replica {
	return &replica{mem: memorystore.New(), scan: scan}
}

// serves reports whether the replica answers checks now.
func (r *replica) serves() bool { return r != nil && r.ready.Load() }

// answer sets until[i] to when the revocation of jtis[i] ends: map reads
// under one read lock.
func (r *replica) answer(ctx context.Context, jtis []string, until []time.Time) error {
	return r.mem.RevokedUntilEach(ctx, jtis, until)
}

// apply records a revocation: revocation is monotonic, so applying one
// twice, or one older than the replica's, changes nothing.
func (r *replica) apply(jti string, exp time.Time) {
	if r != nil {
		_ = r.mem.Revoke(context.Background(), jti, exp)
	}
}

// setReady sets whether the replica answers checks.
func (r *replica) setReady(ready bool) {
	if r != nil {
		r.ready.Store(ready)
	}
}

// lost notes, as the watch is lost, whether the replica was complete.
func (r *replica) lost() {
	if r != nil {
		r.readyAtLoss.Store(r.ready.Load())
	}
}

// stale returns the answer stale-if-error gives for jti from the replica,
// if it was complete when the watch was lost.
func (r *replica) stale(jti string, now int64) (entry, bool) {
	if r == nil || !r.readyAtLoss.Load() {
		return entry{}, false
	}
	until, err := r.mem.RevokedUntil(context.Background(), jti)
	if err != nil {
		return entry{}, false
	}
	if until.IsZero() {
		return entry{until: sat(now, 1)}, true
	}
	return entry{until: unixNano(until), revoked: true}, true
}

// load fills the replica with every live revocation of the next Store,
// retrying every retry until it succeeds or ctx ends (it then reports
// false); failed reads are counted in errs. The watch goes on meanwhile
// and applies what is announced during the load to the replica: it merges
// both, since revocation is monotonic. Entries already in the replica stay:
// they are live revocations too.
func (r *replica) load(ctx context.Context, retry time.Duration, errs *atomic.Uint64) bool {
	for {
		err := r.scan.ScanRevoked(ctx, func(jti string, until time.Time) error {
			return r.mem.Revoke(context.Background(), jti, until)
		})
		if err == nil {
			r.loads.Add(1)
			r.lastLoad.Store(time.Now().UnixNano())
			return true
		}
		errs.Add(1)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// size is the number of revocations the replica holds.
func (r *replica) size() int {
	if r == nil {
		return 0
	}
	return r.mem.Len()
}

// loadCount is the number of complete loads.
func (r *replica) loadCount() uint64 {
	if r == nil {
		return 0
	}
	return r.loads.Load()
}

// close waits for the loads to end and frees the replica.
func (r *replica) close() {
	if r != nil {
		r.running.Wait()
		r.mem.Close()
	}
}

// lock and unlock take and release mu; they do nothing outside replica
// mode.
func (r *replica) lock() {
	if r != nil {
		r.mu.Lock()
	}
}

func (r *replica) unlock() {
	if r != nil {
		r.mu.Unlock()
	}
}

// cancelLoadLocked stops the load running, if any, and makes any load
// begun so far not current. r.mu must be held.
func (r *replica) cancelLoadLocked() {
	if r == nil {
		return
	}
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	r.seq++
	r.loaded = false
}
