// Package cached puts a local LRU cache in front of any blocklist.Store, so
// the check every request makes is a memory read instead of a round trip.
//
// A revocation made through this Store is seen here at once. One made
// elsewhere is seen as soon as the watch delivers its announcement when the
// next Store announces revocations (a blocklist.WatchStore: redisstore,
// memorystore) and the revocation was announced; otherwise only when the
// "not revoked" answer cached for its id ends: WatchNegativeTTL (one minute
// by default) while the watch is live, NegativeTTL (one second by default)
// without a watch. "How stale an answer can be" below is the one statement
// of these rules. A replica mode answers every check from memory.
//
// # When to choose it
//
// Choose it in front of a networked backend (redisstore, memcachestore)
// when checks outnumber revocations, which is nearly always: almost every
// token checked is not revoked, and each "not revoked" answer is then
// reused instead of being asked again. A hit is a map read and allocates
// nothing; a miss costs one round trip to the next Store, shared by every
// concurrent miss on the same id. There is no point
// in front of memorystore, which is already a memory read. The cache adds
// no durability of its own: every revocation is written through to the
// next Store before this one records it.
//
// # How answers are kept
//
//   - "Not revoked" is kept for NegativeTTL (WithNegativeTTL), or
//     WatchNegativeTTL while a watch is live, counted from before the
//     lookup that produced it, and not at all while a watch is starting or
//     lost (see "How stale an answer can be"). Zero turns this off.
//   - "Revoked" is kept until the revocation ends, never longer, so
//     IsRevoked turns false on time. The end comes from the next Store's
//     RevokedUntil when it is a blocklist.ExpiryStore (every backend of this
//     module is); otherwise a revoked answer is kept for PositiveTTL
//     (WithPositiveTTL).
//   - Revoke writes through first; only when the next Store accepted it is
//     the local entry updated, to the later of the old and new exp.
//   - Errors are never cached: a failed lookup leaves nothing behind and
//     the next check asks again, so an outage leaves no stale answer. A
//     panic of the next Store in a lookup is raised again in every check
//     waiting for it, as a direct call would raise it.
//   - Concurrent misses on one id make a single lookup (singleflight),
//     whether they come from IsRevoked, RevokedUntil or RevokedUntilEach;
//     a batch reads the ids no lookup in flight covers in one call. A
//     lookup runs detached from any one caller's cancellation, bounded by
//     WithLookupTimeout, so a caller that gives up does not fail the others.
//     A shared answer is as fresh as a cached one: a check that joined a
//     lookup started longer ago than "not revoked" may be kept (a slow
//     next Store, a TTL of 0) reads again rather than answer "not revoked"
//     from it.
//
// The cache holds at most WithSize entries (DefaultSize is 50,000); the
// least recently checked is dropped first. Stats reports
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
//     until exp" entry as soon as the watch reads it: the watch's
//     propagation delay, until its next read of the stream returns the
//     announcement (go run ./bench measures it; the README gives figures);
//   - while the watch is live, "not revoked" answers are kept for
//     WatchNegativeTTL (one minute by default) instead of NegativeTTL,
//     since an announced revocation arrives through the watch;
//   - when the watch is lost (the first failed read of the stream, or a
//     server silent for redisstore.WatchSilenceBound), every "not revoked"
//     entry is distrusted at once (a generation counter compared on read:
//     no sweep, no allocation), none is cached, and each check of a token
//     not known to be revoked asks the next Store itself, until the watch
//     is back and has delivered everything it missed (Resumed) or started
//     over (Synced).
//
// The WatchStore keeps its connection: it reconnects by itself and reports
// each loss and recovery as an event, and the Store follows those events
// with no reconnect logic of its own. Should Watch end with an error before
// Close (one that retrying cannot fix; redisstore's only such error is
// that announcements are off), the error is logged and counted in
// Stats.Errors, and the Store goes on without a watch (WatchOff).
//
// A check never waits long for a Store that has gone silent: a lookup in
// flight when the watch is lost stops waiting then, and while the watch is
// lost each lookup waits at most LostLookupTimeout, whatever the client's
// own timeouts. Over redisstore a check of a frozen or killed server thus
// returns within about redisstore.WatchSilenceBound plus LostLookupTimeout:
// with an error (fail closed), or, with WithStaleIfError, from memory.
//
// # How stale an answer can be
//
// This is the one statement of the staleness rules; the options and the
// other sections refer to it. A revocation made through this Store is seen
// here at once. One made elsewhere (another instance, another service, a
// write straight into the next Store) is announced when it is written on the
// next Store's stream: every Revoke and RevokeOnce of this module (unless
// made with redisstore.WithoutEvents), and a writer in any language that
// follows the recipe in redisstore's package documentation (the XADD with
// the key, in the same MULTI/EXEC on a single server). An announced
// revocation reaches this Store within the watch's propagation delay while
// the watch is live, even when a "not revoked" answer for its id is cached.
// One written without its announcement is seen only when the "not revoked"
// answer cached for its id ends: WatchNegativeTTL while the watch is live,
// NegativeTTL when there is no watch; in replica mode, at the replica's next
// full load. While a watch is starting or lost, no "not revoked" answer is
// cached or trusted and every such check reads the next Store, unless
// WithStaleIfError allows answers from memory. By state:
//
//	state of the watch (Stats.Watch)   how stale "not revoked" can be
//	off (no WatchStore, WithoutWatch)  NegativeTTL (default 1 s), announced or not
//	starting, lost                     not at all: every such check reads the next Store
//	lost, WithStaleIfError(d)          d after the watch was lost (see the option),
//	                                   plus the watch's delay in noticing the loss
//	live                               the propagation delay when announced;
//	                                   WatchNegativeTTL (default 1 min) when not
//	live, replica mode                 the propagation delay when announced; the
//	                                   next full load when not
//
// "Revoked" answers never go stale in any state: they are kept until the
// revocation ends, and revocation is monotonic. The end RevokedUntil
// reports can move later, though (a later Revoke of the id extends it, as
// jwtguard's LogoutAll does, which reads its cutoff from the end): a
// cached end read from the next Store is trusted exactly as a "not
// revoked" answer is, by the table above, and read again after.
//
// # Replica mode
//
// With WithReplica, the Store holds every live revocation of the next Store
// in memory (an in-process memorystore): loaded at start with ScanRevoked
// (for Redis: SCAN of the prefix and PEXPIRETIME, pipelined, a round trip
// per thousand keys), then kept current by the watch, which goes on
// applying announcements while a load runs, so a load ends with every
// revocation announced during it. While the watch is
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
// with their tokens and are swept by the memorystore's expiry heap: it grows
// linearly with their number and id length (BenchmarkReplicaMemory measures
// it; the README gives figures). Choose it when checks come from many distinct
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
// otherwise; a watch that ended with an error is logged at Warn with the
// error. Close stops the metrics of the Store: call it when done, or
// the meter provider keeps the Store reachable.
package cached
