package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jwtblocklist/blocklist/cached"
	"github.com/jwtblocklist/blocklist/internal/measure"
)

// comparedPair is a row of the comparison and the row beneath it, measured.
type comparedPair struct {
	name, rawName string
	rawLib        string // short name of the raw client, for the chart
	store, raw    measure.Result
	bareName      string          // the second baseline, when the pair has one
	bare          *measure.Result // its result
	err           error           // set when the pair could not be measured
}

// pairMaker makes the pair of one row when its turn comes, so that only one
// pair holds files and connections at a time.
type pairMaker struct {
	name string
	make func() (pair, error)
}

// comparisonHeader names the columns of the comparison table; a test checks
// that every row fills each of them.
var comparisonHeader = []string{
	"backend",
	"revoked p50", "revoked p99",
	"unrevoked p50", "unrevoked p99",
	"Revoke p50", "Revoke p99",
	"parallel",
	"allocs/op",
	"vs raw (p50)",
	"ops timed",
}

// pairMakers lists the rows the env can measure, in the order of the table.
func (r *runner) pairMakers(boltDir string) []pairMaker {
	e := r.env
	makers := []pairMaker{
		{"memorystore", func() (pair, error) { return memoryPair(), nil }},
		{"boltstore", func() (pair, error) {
			dir, err := os.MkdirTemp(boltDir, "blocklist-bench-*")
			if err != nil {
				return pair{}, err
			}
			p, _, err := boltPair(dir)
			if err != nil {
				return pair{}, errors.Join(err, os.RemoveAll(dir))
			}
			closeStore := p.close
			p.close = func() error { return errors.Join(closeStore(), os.RemoveAll(dir)) }
			return p, nil
		}},
	}
	// Networked pairs get a key prefix per row, so the cached rows do not
	// read the keys of the plain ones.
	type netMaker struct {
		name, key   string
		make        func(prefix string) pair
		negativeTTL time.Duration // of cached in front of it
	}
	var networked []netMaker
	if e.redis != nil {
		networked = append(networked, netMaker{"redisstore", "redis", func(prefix string) pair {
			return redisPair("redisstore", e.redis, prefix)
		}, cached.DefaultWatchNegativeTTL})
	}
	if e.cluster != nil {
		networked = append(networked, netMaker{"redisstore (cluster)", "cluster", func(prefix string) pair {
			return redisPair("redisstore (cluster)", e.cluster, prefix)
		}, cached.DefaultWatchNegativeTTL})
	}
	if e.memcache != nil {
		networked = append(networked, netMaker{"memcachestore", "memcache", func(prefix string) pair {
			return memcachePair(e.memcache, prefix)
		}, cached.DefaultNegativeTTL})
	}
	for _, m := range networked {
		makers = append(makers, pairMaker{m.name, func() (pair, error) { return m.make(e.prefix(m.key)), nil }})
	}
	for _, m := range networked {
		makers = append(makers, pairMaker{"cached → " + m.name, func() (pair, error) {
			return cachedPair(m.make(e.prefix("cached-"+m.key)), m.negativeTTL)
		}})
	}
	wanted := makers[:0]
	for _, m := range makers {
		if e.cfg.wants(m.name) {
			wanted = append(wanted, m)
		}
	}
	return wanted
}

// comparison measures each pair, the Store then its raw calls, and
// returns the table.
func (r *runner) comparison(ctx context.Context) (section, error) {
	cfg := r.env.cfg
	sec := section{title: "Every backend beside its raw client"}
	sec.intro = append(sec.intro,
		fmt.Sprintf("Each Store and the raw client calls it is built on (the ↳ row beneath it) "+
			"run through the workload of `conformance.RunBenchmarks`, against the same server, taking turns in every phase "+
			"(eight turns each, A B B A A B B A ...): "+
			"%s token ids revoked, then IsRevoked cycling over them (revoked) and over as many ids never revoked "+
			"(unrevoked), Revoke of a fresh id per call, and IsRevoked from %d goroutines at once (parallel, half "+
			"revoked ids). Ids are 36-byte UUID-like strings; every answer is checked.",
			fmtCount(cfg.keys), cfg.parallelism()))
	tbl := table{header: comparisonHeader}

	boltDir := cfg.boltDir // "" is the temporary directory
	for _, m := range r.pairMakers(boltDir) {
		cp := comparedPair{name: m.name}
		p, err := m.make()
		if err != nil {
			cp.err = err
		} else {
			cp.name, cp.rawName, cp.rawLib = p.name, p.rawName, p.rawLib
			cp.store, cp.raw, cp.err = r.measurePair(ctx, p)
			if cp.err == nil && p.bare != nil {
				cp.bareName = p.bareName
				r.log.printf("%s: measuring the second baseline (%s)", p.name, p.bareName)
				res, err := measure.Measure(ctx, "raw "+p.bareName, p.bare, r.env.cfg.measureOpts()...)
				cp.bare, cp.err = &res, err
			}
			if err := p.close(); err != nil && cp.err == nil {
				cp.err = err
			}
		}
		if ctx.Err() != nil {
			return sec, ctx.Err()
		}
		if cp.err != nil {
			r.log.printf("%s: %v", cp.name, cp.err)
			sec.failed = true
		}
		r.compared = append(r.compared, cp)
		addComparedRows(&tbl, cp)
	}
	sec.table = tbl

	sec.notes = append(sec.notes,
		"Latencies are per operation, from one goroutine. *parallel* is IsRevoked operations per second from all goroutines. "+
			"*allocs/op* and *vs raw* read revoked · unrevoked · Revoke; *vs raw* is the p50 of the Store over the p50 "+
			"of the raw calls beneath it. *ops timed* reads revoked · unrevoked · Revoke · parallel: a phase stops early "+
			"at its time limit, which is why a slow Revoke has fewer.",
		"The servers run on the machine that measures them, and compete with it for CPU: on a machine with few cores, "+
			"networked figures move by tens of percent from run to run, while a Store and its raw client, measured in turns, "+
			"move together. Read the ratios before the absolute figures.",
		"Operations under about 2 µs are timed in groups, one clock reading per group, and their p99 is a p99 of group "+
			"means (see `internal/measure`); slower ones are timed one by one.",
		"boltstore's Revoke, and the raw Batch+Put beneath it, wait for bbolt's batch delay (10 ms by default) and an "+
			"fsync of the file in "+boltDirName(boltDir)+": that disk sets its cost. Concurrent revocations share one batch.",
		"The *cached* rows use the package's defaults: \"not revoked\" kept 1 s (a minute while Redis's announcements are "+
			"watched), a revocation until its end; after the warm-up nearly every lookup is a hit. Their first raw row is the "+
			"cache one would write by hand with golang-lru: each answer stored with the same end and compared with the clock "+
			"on every hit. The second, measured after the pair, is the bare golang-lru Get whose answers never expire: "+
			"faster, and wrong, since a revocation made by another instance is never seen. Revoke writes through to the "+
			"server in all three.",
	)
	for _, s := range r.env.skipped {
		sec.notes = append(sec.notes, "Skipped: "+s+".")
	}
	return sec, nil
}

func boltDirName(dir string) string {
	if dir == "" {
		return "the temporary directory"
	}
	return "-bolt-dir"
}

// measurePair measures p's Store and its raw calls, taking turns phase by
// phase.
func (r *runner) measurePair(ctx context.Context, p pair) (store, raw measure.Result, err error) {
	opts := append(r.env.cfg.measureOpts(), measure.WithBaseline("raw "+p.rawName, p.raw))
	r.log.printf("%s: measuring, in turns with the raw client (%s)", p.name, p.rawName)
	res, err := measure.Measure(ctx, p.name, p.store, opts...)
	if err != nil {
		return res, raw, err
	}
	raw = *res.Baseline
	r.log.printf("%s: p50 revoked %s (raw %s), unrevoked %s (raw %s), Revoke %s (raw %s)", p.name,
		fmtDur(res.Revoked.P50), fmtDur(raw.Revoked.P50), fmtDur(res.Unrevoked.P50), fmtDur(raw.Unrevoked.P50),
		fmtDur(res.Revoke.P50), fmtDur(raw.Revoke.P50))
	return res, raw, nil
}

// addComparedRows adds the row of a Store and the row of its raw calls.
func addComparedRows(t *table, cp comparedPair) {
	if cp.err != nil {
		cells := make([]string, len(comparisonHeader))
		cells[0] = cp.name
		cells[1] = "failed: " + cp.err.Error()
		t.add(cells...)
		return
	}
	s, raw := cp.store, cp.raw
	ratio := join(fmtRatio(s.Revoked.P50, raw.Revoked.P50), fmtRatio(s.Unrevoked.P50, raw.Unrevoked.P50), fmtRatio(s.Revoke.P50, raw.Revoke.P50))
	t.add(resultCells(cp.name, s, ratio)...)
	t.add(resultCells("↳ raw: "+cp.rawName, raw, "1")...)
	if b := cp.bare; b != nil {
		t.add(resultCells("↳ raw: "+cp.bareName, *b, "store ÷ this: "+
			join(fmtRatio(s.Revoked.P50, b.Revoked.P50), fmtRatio(s.Unrevoked.P50, b.Unrevoked.P50), fmtRatio(s.Revoke.P50, b.Revoke.P50)))...)
	}
}

// resultCells are the cells of one measured row, in comparisonHeader's order.
func resultCells(name string, r measure.Result, ratio string) []string {
	return []string{
		name,
		fmtDur(r.Revoked.P50), fmtDur(r.Revoked.P99),
		fmtDur(r.Unrevoked.P50), fmtDur(r.Unrevoked.P99),
		fmtDur(r.Revoke.P50), fmtDur(r.Revoke.P99),
		fmtRate(r.Parallel.OpsPerSec),
		join(fmtAllocs(r.Revoked.AllocsPerOp), fmtAllocs(r.Unrevoked.AllocsPerOp), fmtAllocs(r.Revoke.AllocsPerOp)),
		ratio,
		join(fmtCount(r.Revoked.Ops), fmtCount(r.Unrevoked.Ops), fmtCount(r.Revoke.Ops), fmtCount(r.Parallel.Ops)),
	}
}
