// Package cached puts a local LRU cache in front of any blocklist.Store, so
// the check every request makes is a memory read instead of a round trip.
//
// A revocation written by another process, or straight into the next Store,
// is seen here at most NegativeTTL (one second by default) after it was
// made; one made through this Store is seen here at once. Over a Store that
// announces revocations (redisstore), another process's revocation is seen
// within milliseconds, and a replica mode answers every check from memory:
// see "Watching the next Store".
//
// # When to choose it
//
// Choose it in front of a networked backend (redisstore, memcachestore)
// when checks outnumber revocations, which is nearly always: almost every
// token checked is not revoked, and each "not revoked" answer is then
// reused for NegativeTTL instead of being asked again. A hit costs about
// 100 ns and allocates nothing; a miss costs one round trip to the next
// Store, shared by every concurrent miss on the same id. There is no point
// in front of memorystore, which is already a memory read. The cache adds
// no durability of its own: every revocation is written through to the
// next Store before this one records it.
//
// # How answers are kept
//
//   - "Not revoked" is kept for NegativeTTL (WithNegativeTTL), counted from
//     before the lookup that produced it. Zero turns this off.
//   - "Revoked" is kept until the revocation ends, never longer, so
//     IsRevoked turns false on time. The end comes from the next Store's
//     RevokedUntil when it is a blocklist.ExpiryStore (every backend of this
//     module is); otherwise a revoked answer is kept for PositiveTTL
//     (WithPositiveTTL).
//   - Revoke writes through first; only when the next Store accepted it is
//     the local entry updated, to the later of the old and new exp.
//   - Errors are never cached: a failed lookup leaves nothing behind and
//     the next check asks again, so an outage leaves no stale answer.
//   - Concurrent misses on one id make a single lookup (singleflight). It
//     runs detached from any one caller's cancellation, bounded by
//     WithLookupTimeout, so a caller that gives up does not fail the others.
//
// The cache holds at most WithSize entries (DefaultSize is 50,000, about
// 9 MB full); the least recently checked is dropped first. Stats reports
// hits, misses, lookups, errors and evictions.
//
// # Watching the next Store
//
// When the next Store is a blocklist.WatchStore (redisstore is: every
// Revoke announces itself on a Redis stream in the same round trip), New
// starts a goroutine that watches it, and Close stops it; WithoutWatch
// turns this off. Then:
//
//   - every revocation announced by any instance becomes a local "revoked
//     until exp" entry at once, about 0.2 ms (p50) to 4 ms (p99) after the
//     Revoke on loopback (BenchmarkPropagation, go run ./bench);
//   - while the watch is live, "not revoked" answers are kept for
//     WatchNegativeTTL (one minute by default) instead of NegativeTTL,
//     since any revocation will arrive as an announcement;
//   - when the watch is lost (the first failed read of the stream, or a
//     server silent for redisstore.WatchSilenceBound), every "not revoked"
//     entry is distrusted at once (a generation counter compared on read:
//     no sweep, no allocation), none is cached, and each check of a token
//     not known to be revoked asks the next Store itself, until the watch
//     is back and has delivered everything it missed (Resumed) or started
//     over (Synced). A revocation made while this instance was deaf is
//     therefore never answered "not revoked": the check errors, or reads
//     the next Store after it (unless WithStaleIfError says otherwise).
//
// A check never waits long for a Store that has gone silent: a lookup in
// flight when the watch is lost stops waiting then, and while the watch is
// lost each lookup waits at most LostLookupTimeout, whatever the client's
// own timeouts. Over redisstore a check of a frozen or killed server thus
// returns within about redisstore.WatchSilenceBound plus LostLookupTimeout:
// with an error (fail closed), or, with WithStaleIfError, from memory.
//
// How stale a "not revoked" answer can be, for a revocation made by another
// instance through a Store that announces it:
//
//	state of the watch (Stats.Watch)   staleness bound of "not revoked"
//	off (no WatchStore, WithoutWatch)  NegativeTTL (default 1 s)
//	starting, lost                     none: every such check reads the next Store
//	lost, WithStaleIfError(d)          d after the watch was lost (see the option),
//	                                   plus the watch's delay in noticing the loss
//	live                               the propagation delay (ms); WatchNegativeTTL
//	                                   (default 1 min) for a write that bypassed
//	                                   the announcements
//	live, replica mode                 the propagation delay (ms); a write that
//	                                   bypassed the announcements is seen at the
//	                                   next full load only
//
// "Revoked" answers never go stale in any state: they are kept until the
// revocation ends, and revocation is monotonic.
//
// # Replica mode
//
// With WithReplica, the Store holds every live revocation of the next Store
// in memory (an in-process memorystore): loaded at start with ScanRevoked
// (for Redis: SCAN of the prefix and PEXPIRETIME, pipelined, a round trip
// per thousand keys), then kept current by the watch. While the watch is
// live (Stats.ReplicaReady), every check, even of a token never seen
// before, is answered from memory without a round trip, and Stats
// .BackendCalls stays 0. After a disconnection the watch resumes from the
// last announcement it applied; if Redis trimmed announcements it had not
// read (more than redisstore.WithStreamMaxLen revocations while it was
// away), the replica is loaded again. While it is not ready (starting,
// loading, lost), checks fall back to the cache path above, asking the next
// Store: availability over a hard failure, and never a stale "not revoked".
//
// The replica's memory is bounded by the live revocations, which expire
// with their tokens and are swept by the memorystore's expiry heap: about
// 130 bytes per revocation with 36-byte ids, 124 MiB per million
// (BenchmarkReplicaMemory). Choose it when checks come from many distinct
// tokens (a first check of each would otherwise cost a round trip) and the
// blocklist fits in memory comfortably; keep the plain cache otherwise.
//
// # Metrics and logs
//
// A Store reports OpenTelemetry metrics through the meter provider of
// WithMeterProvider (default the global one, otel.GetMeterProvider()),
// under the instrumentation scope ScopeName. The application picks the SDK
// and the exporter; this package uses the metric API only. The counters
// are read from Stats at each collection, so a check records nothing and a
// hit costs the same with or without a provider (BenchmarkHitMetrics).
// Attributes are few and fixed: never a token id.
//
//	cached.lookups                   counter {lookup}     checks by cached.result: hit, miss, error, stale_if_error
//	cached.backend.duration          histogram s          calls to the next Store (lookups on a miss, batch lookups)
//	cached.entries                   updowncounter {entry} entries the cache holds
//	cached.evictions                 counter {entry}      entries dropped to make room
//	cached.watch.status              updowncounter {watch} 1 for the cached.watch.state the watch is in (off,
//	                                                      starting, live, lost), 0 for the others
//	cached.watch.events              counter {revocation} revocations the watch delivered
//	cached.watch.lag                 histogram s          from a revocation's announcement, by the backend's clock
//	                                                      (blocklist.Event.Announced), to its application here
//	cached.replica.size              updowncounter {revocation} revocations the replica holds (replica mode)
//	cached.replica.time_since_sync   gauge s              since the replica last completed a full load (replica mode)
//
// Each change of the watch's state is logged through WithLogger's logger
// (default slog.Default()): at Warn when the watch is lost, at Info
// otherwise. Close stops the metrics of the Store: call it when done, or
// the meter provider keeps the Store reachable.
package cached
