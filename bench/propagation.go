package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/redisstore"
)

// propagationRevocations is how many revocations each row of the
// propagation section times, in quick mode too: it is quick.
const propagationRevocations = 1000

// propagationHeader names the columns of the propagation table.
var propagationHeader = []string{
	"backend", "B's mode", "revocations", "p50", "p99", "max", "B's checks", "B's backend calls",
}

// propagation measures how long a revocation made by one instance takes to
// reach another, over Redis's stream (redisstore announcements, watched by
// package cached), and that a replica answers every check from memory.
func (r *runner) propagation(ctx context.Context) (section, error) {
	e := r.env
	sec := section{title: "Propagation: a logout on instance A seen by instance B"}
	sec.intro = append(sec.intro, fmt.Sprintf("Two instances, each a `cached` Store over `redisstore` with its own client. "+
		"A revokes %s fresh ids one at a time; each figure is the time from the call of A's Revoke to the moment B's watch "+
		"has applied the announcement (B's `Stats().WatchEvents` counts it), so it includes A's write. B keeps \"not revoked\" "+
		"answers for an hour; in replica mode B holds the whole blocklist. Then B checks every revoked id and as many never "+
		"revoked, and the last column counts the calls B made to Redis for them.", fmtCount(propagationRevocations)))
	sec.table = table{header: propagationHeader}
	type target struct {
		name   string
		client func() redis.UniversalClient
	}
	var targets []target
	if e.redis != nil && e.cfg.wants("propagation") {
		addr := e.redis.Options().Addr
		targets = append(targets, target{"redisstore", func() redis.UniversalClient { return newRedisClient(addr) }})
	}
	if e.cluster != nil && e.cfg.wants("propagation") {
		addrs := e.cluster.Options().Addrs
		targets = append(targets, target{"redisstore (cluster)", func() redis.UniversalClient { return newClusterClient(addrs) }})
	}
	if len(targets) == 0 {
		return sec, errors.New("no Redis to measure on")
	}
	for _, tg := range targets {
		for _, replica := range []bool{false, true} {
			mode := "cache"
			if replica {
				mode = "replica"
			}
			r.log.printf("propagation: %s, B in %s mode", tg.name, mode)
			row, err := measurePropagation(ctx, tg.client, e.prefix("propagation-"+tg.name+"-"+mode), replica)
			if err != nil {
				sec.failed = true
				sec.table.add(tg.name, mode, "error: "+err.Error())
				continue
			}
			sec.table.add(append([]string{tg.name, mode}, row...)...)
		}
	}
	sec.notes = append(sec.notes, "The goal is p99 under 10 ms on loopback. In replica mode B's backend calls must be 0: "+
		"every check, of revoked and never-seen ids alike, is answered from B's memory.")
	return sec, nil
}

// measurePropagation times propagationRevocations revocations from A to B
// and returns the cells of one row after the mode.
func measurePropagation(ctx context.Context, newClient func() redis.UniversalClient, prefix string, replica bool) ([]string, error) {
	ca, cb := newClient(), newClient()
	defer ca.Close()
	defer cb.Close()
	a, err := cached.New(redisstore.New(ca, redisstore.WithPrefix(prefix)))
	if err != nil {
		return nil, err
	}
	defer a.Close()
	opts := []cached.Option{cached.WithNegativeTTL(time.Hour), cached.WithWatchNegativeTTL(time.Hour)}
	if replica {
		opts = append(opts, cached.WithReplica())
	}
	b, err := cached.New(redisstore.New(cb, redisstore.WithPrefix(prefix)), opts...)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for b.Stats().Watch != cached.WatchLive {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("B's watch not live after 10 s (%s)", b.Stats().Watch)
		}
		time.Sleep(time.Millisecond)
	}

	exp := time.Now().Add(30 * time.Minute)
	lat := make([]time.Duration, 0, propagationRevocations)
	ids := make([]string, propagationRevocations)
	for i := range ids {
		ids[i] = prefix + "id-" + strconv.Itoa(i)
		want := b.Stats().WatchEvents + 1
		start := time.Now()
		if err := a.Revoke(ctx, ids[i], exp); err != nil {
			return nil, err
		}
		for b.Stats().WatchEvents < want {
			if time.Since(start) > 5*time.Second {
				return nil, fmt.Errorf("revocation %d not seen by B after 5 s", i)
			}
			runtime.Gosched()
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)

	before := b.Stats().BackendCalls
	for i, jti := range ids {
		if ok, err := b.IsRevoked(ctx, jti); err != nil || !ok {
			return nil, fmt.Errorf("B: IsRevoked(%q) = %v, %v after propagation", jti, ok, err)
		}
		if ok, err := b.IsRevoked(ctx, prefix+"never-"+strconv.Itoa(i)); err != nil || ok {
			return nil, fmt.Errorf("B: IsRevoked of an id never revoked = %v, %v", ok, err)
		}
	}
	calls := b.Stats().BackendCalls - before
	return []string{
		fmtCount(len(lat)),
		fmtDur(lat[len(lat)/2]), fmtDur(lat[len(lat)*99/100]), fmtDur(lat[len(lat)-1]),
		fmtCount(2 * len(ids)), strconv.FormatUint(calls, 10),
	}, nil
}
