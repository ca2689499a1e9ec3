package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/boltstore"
	"github.com/jwtblocklist/blocklist/internal/measure"
	"github.com/jwtblocklist/blocklist/memcachestore"
	"github.com/jwtblocklist/blocklist/memorystore"
	"github.com/jwtblocklist/blocklist/redisstore"
)

const (
	// fillChunk is how many ids are made and written at a time while
	// filling, which bounds the memory the ids take.
	fillChunk = 50_000
	// growthSample is how many revoked ids, drawn at random from the whole
	// blocklist, the lookups of one size cycle through.
	growthSample = 1_000
	// memcachedEntryBytes is a generous estimate of the memory one
	// revocation takes in memcached (key, value, item header, slab slack),
	// used to skip sizes a memcached cannot hold without evicting.
	memcachedEntryBytes = 256
)

// growTarget is one backend being filled: the store to look up in, and the
// fastest honest way to add revocations to it.
type growTarget struct {
	store blocklist.Store
	fill  func(ctx context.Context, ids []string, exp time.Time) error
	close func() error
}

// grower is a backend of the growth section.
type grower struct {
	name    string
	maxSize int    // sizes above are skipped; 0: no limit
	why     string // why sizes above maxSize are skipped
	open    func(ctx context.Context) (*growTarget, error)
}

func (r *runner) growers() []grower {
	e := r.env
	gs := []grower{
		{name: "memorystore", open: func(context.Context) (*growTarget, error) {
			s := memorystore.New()
			return &growTarget{
				store: s,
				fill: func(ctx context.Context, ids []string, exp time.Time) error {
					for _, id := range ids {
						if err := s.Revoke(ctx, id, exp); err != nil {
							return err
						}
					}
					return nil
				},
				close: s.Close,
			}, nil
		}},
		{name: "boltstore", open: func(context.Context) (*growTarget, error) { return openBoltGrowth(e.cfg.boltDir) }},
	}
	if e.redis != nil {
		gs = append(gs, grower{name: "redisstore", open: func(context.Context) (*growTarget, error) {
			return redisGrowth(e.redis, e.prefix("growth-redis")), nil
		}})
	}
	if e.cluster != nil {
		gs = append(gs, grower{name: "redisstore (cluster)", open: func(context.Context) (*growTarget, error) {
			return redisGrowth(e.cluster, e.prefix("growth-cluster")), nil
		}})
	}
	if e.memcache != nil {
		g := grower{name: "memcachestore", open: func(context.Context) (*growTarget, error) {
			s := memcachestore.New(e.memcache, memcachestore.WithPrefix(e.prefix("growth-memcache")))
			return &growTarget{
				store: s,
				fill: func(ctx context.Context, ids []string, exp time.Time) error {
					return measure.RevokeAll(ctx, s, ids, exp)
				},
				close: nop,
			}, nil
		}}
		if e.memcacheBytes > 0 {
			g.maxSize = int(e.memcacheBytes / memcachedEntryBytes)
			g.why = fmt.Sprintf("memcachestore: sizes above %s skipped: memcached has %d MB (-m), and would evict", fmtCount(g.maxSize), e.memcacheBytes>>20)
		}
		gs = append(gs, g)
	}
	wanted := gs[:0]
	for _, g := range gs {
		if e.cfg.wants(g.name) {
			wanted = append(wanted, g)
		}
	}
	return wanted
}

// growth fills each backend to every size in turn and times IsRevoked at
// each.
func (r *runner) growth(ctx context.Context) (section, error) {
	cfg := r.env.cfg
	sec := section{title: "Growth: IsRevoked as the blocklist fills"}
	sec.intro = append(sec.intro, fmt.Sprintf(
		"Each backend, fresh, is filled to %s live revocations in turn; at each size IsRevoked is timed on %s "+
			"revoked ids drawn at random from the whole blocklist (revoked) and on ids never revoked (unrevoked), "+
			"up to %s operations each (p50 · p99).",
		sizesText(cfg.sizes), fmtCount(growthSample), fmtCount(cfg.growthOps)))
	tbl := table{header: []string{"backend", "lookup"}}
	for _, n := range cfg.sizes {
		tbl.header = append(tbl.header, fmtSize(n)+" p50 · p99")
	}
	tbl.header = append(tbl.header, "ops timed")

	exp := time.Now().Add(cfg.lifetime)
	opts := []measure.Option{
		measure.WithOps(cfg.growthOps),
		measure.WithWarmup(cfg.growthOps / 10),
		measure.WithMinDuration(cfg.minDuration),
		measure.WithMaxDuration(cfg.maxDuration),
	}
	for _, g := range r.growers() {
		revoked := []string{g.name, "revoked"}
		unrevoked := []string{"", "unrevoked"}
		ops := -1 // the fewest operations behind a figure of the row
		err := r.grow(ctx, g, exp, opts, func(size int, rev, unrev measure.Latency) {
			revoked = append(revoked, join(fmtDur(rev.P50), fmtDur(rev.P99)))
			unrevoked = append(unrevoked, join(fmtDur(unrev.P50), fmtDur(unrev.P99)))
			if ops < 0 {
				ops = rev.Ops
			}
			ops = min(ops, rev.Ops, unrev.Ops)
		})
		if ctx.Err() != nil {
			return sec, ctx.Err()
		}
		if err != nil {
			r.log.printf("growth: %s: %v", g.name, err)
			sec.failed = true
			revoked = append(revoked, "failed: "+err.Error())
		}
		for len(revoked) < len(tbl.header)-1 {
			revoked = append(revoked, "–")
			unrevoked = append(unrevoked, "–")
		}
		opsCell := "–"
		if ops >= 0 {
			opsCell = fmtCount(ops)
		}
		tbl.add(append(revoked, opsCell)...)
		tbl.add(append(unrevoked, "")...)
		if g.maxSize > 0 && g.maxSize < cfg.sizes[len(cfg.sizes)-1] {
			sec.notes = append(sec.notes, g.why+".")
		}
	}
	sec.table = tbl
	sec.notes = append(sec.notes,
		"Filling is not timed. memorystore and memcachestore are filled through Revoke, boltstore through Revoke "+
			"from many goroutines on the same file opened without fsync (then closed and reopened as usual), "+
			"Redis with pipelined `SET key 1 PXAT exp`, the layout redisstore documents. "+
			"*cached* is left out: its lookups are answered from its own LRU, whatever the size behind it.",
		"*ops timed* is the smallest count behind a figure of the row.")
	return sec, nil
}

func sizesText(sizes []int) string {
	s := ""
	for i, n := range sizes {
		switch {
		case i == 0:
		case i == len(sizes)-1:
			s += " and "
		default:
			s += ", "
		}
		s += fmtSize(n)
	}
	return s
}

// grow fills g to each size and reports the lookups timed at each.
func (r *runner) grow(ctx context.Context, g grower, exp time.Time, opts []measure.Option,
	report func(size int, revoked, unrevoked measure.Latency)) (err error) {
	t, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, t.close()) }()

	runID := r.env.runID
	unrevokedIDs := make([]string, growthSample)
	for i := range unrevokedIDs {
		unrevokedIDs[i] = growthID(runID, 'x', i)
	}
	filled := 0
	for _, size := range r.env.cfg.sizes {
		if g.maxSize > 0 && size > g.maxSize {
			return nil
		}
		start := time.Now()
		for filled < size {
			n := min(fillChunk, size-filled)
			ids := make([]string, n)
			for i := range ids {
				ids[i] = growthID(runID, 'g', filled+i)
			}
			if err := t.fill(ctx, ids, exp); err != nil {
				return fmt.Errorf("filling to %s: %w", fmtSize(size), err)
			}
			filled += n
		}
		r.log.printf("growth: %s: filled to %s in %s", g.name, fmtSize(size), fmtDur(time.Since(start)))

		sample := make([]string, growthSample)
		for i := range sample {
			sample[i] = growthID(runID, 'g', rand.IntN(size))
		}
		s := t.store
		rev, err := measure.Time(ctx, func(ctx context.Context, i int) error {
			jti := sample[i%len(sample)]
			ok, err := s.IsRevoked(ctx, jti)
			if err == nil && !ok {
				err = fmt.Errorf("IsRevoked(%q) answered false for a revoked id", jti)
			}
			return err
		}, opts...)
		if err != nil {
			return fmt.Errorf("at %s, revoked ids: %w", fmtSize(size), err)
		}
		unrev, err := measure.Time(ctx, func(ctx context.Context, i int) error {
			jti := unrevokedIDs[i%len(unrevokedIDs)]
			ok, err := s.IsRevoked(ctx, jti)
			if err == nil && ok {
				err = fmt.Errorf("IsRevoked(%q) answered true for an id never revoked", jti)
			}
			return err
		}, opts...)
		if err != nil {
			return fmt.Errorf("at %s, unrevoked ids: %w", fmtSize(size), err)
		}
		r.log.printf("growth: %s at %s: revoked p50 %s, unrevoked p50 %s", g.name, fmtSize(size), fmtDur(rev.P50), fmtDur(unrev.P50))
		report(size, rev, unrev)
	}
	return nil
}

// growthID is the i-th id of a kind in the growth section: UUID-shaped,
// like the ids of package measure.
func growthID(runID string, kind byte, i int) string {
	return fmt.Sprintf("%s-%c000-4000-8000-%012x", runID, kind, i)
}

// redisGrowth fills Redis with pipelines of the documented write, SET
// prefix+jti 1 PXAT exp, eight pipelines of a thousand at once.
func redisGrowth(client redis.UniversalClient, prefix string) *growTarget {
	const batch, pipelines = 1000, 8
	return &growTarget{
		store: redisstore.New(client, redisstore.WithPrefix(prefix)),
		fill: func(ctx context.Context, ids []string, exp time.Time) error {
			ms := exp.UnixMilli() + 1
			var wg sync.WaitGroup
			errs := make([]error, pipelines)
			for w := range pipelines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for from := w * batch; from < len(ids) && errs[w] == nil; from += pipelines * batch {
						part := ids[from:min(from+batch, len(ids))]
						_, errs[w] = client.Pipelined(ctx, func(p redis.Pipeliner) error {
							for _, id := range part {
								p.Do(ctx, "set", prefix+id, "1", "pxat", ms)
							}
							return nil
						})
					}
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		},
		close: nop,
	}
}

// openBoltGrowth makes a boltstore in a new file. Its fill closes the store,
// reopens the file without fsync, revokes through a Store from a thousand
// goroutines (bbolt groups them in transactions of up to a thousand), and
// reopens the file as usual for the lookups. The file is not fsynced
// in between: the lookups read the same pages either way.
func openBoltGrowth(parent string) (*growTarget, error) {
	dir, err := os.MkdirTemp(parent, "blocklist-bench-growth-*")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "growth.db")
	var db *bolt.DB
	t := &growTarget{}
	open := func(noSync bool) error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: noSync})
		if err != nil {
			return err
		}
		s, err := boltstore.New(db)
		if err != nil {
			return errors.Join(err, db.Close())
		}
		t.store = s
		return nil
	}
	shut := func() error {
		if db == nil {
			return nil
		}
		err := errors.Join(t.store.(*boltstore.Store).Close(), db.Close())
		db = nil
		return err
	}
	if err := open(false); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	t.fill = func(ctx context.Context, ids []string, exp time.Time) error {
		if err := shut(); err != nil {
			return err
		}
		if err := open(true); err != nil {
			return err
		}
		fillErr := revokeParallel(ctx, t.store, ids, exp, 1000)
		// Write the pages out now, so that the kernel does not flush them
		// while lookups (here or of the next backend) are being timed.
		if fillErr == nil {
			fillErr = db.Sync()
		}
		if err := shut(); err != nil {
			return errors.Join(fillErr, err)
		}
		return errors.Join(fillErr, open(false))
	}
	t.close = func() error { return errors.Join(shut(), os.RemoveAll(dir)) }
	return t, nil
}

// revokeParallel revokes ids in s from the given number of goroutines.
func revokeParallel(ctx context.Context, s blocklist.Store, ids []string, exp time.Time, workers int) error {
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += workers {
				if errs[w] = s.Revoke(ctx, ids[i], exp); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
