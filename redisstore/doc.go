// Package redisstore keeps revoked token ids in Redis, so every instance of
// a service shares one blocklist. Choose it when the service runs more than
// one process, or must remember logouts across restarts and already runs
// Redis. It works with a standalone server, a Redis Cluster and a sharded
// *redis.Ring: pass any redis.UniversalClient of go-redis v9 to [New]. The
// caller builds, configures and closes the client. It needs Redis 7.0 or
// later (PEXPIREAT ... GT, PEXPIRETIME).
//
// # Cost
//
// Every call is one network round trip: IsRevoked is one EXISTS, RevokedUntil
// one PEXPIRETIME, Revoke one MULTI/EXEC of two commands on the token's key
// and the XADD that announces it (see Announcements; on a Ring two round
// trips sent at once). Under [WithWait] each write also waits, in the same
// round trip, until its replicas acknowledge: about one master-to-replica
// round trip more.
// Expect tens of microseconds on loopback and well under a millisecond inside
// a data centre; put the cached package in front to answer repeated checks
// from memory. Storage is one small string key per live revocation; Redis
// deletes each key itself when its token expires.
//
// # Key layout (public)
//
// The revocation of token id jti is the key prefix+jti, where the prefix is
// "blocklist:" unless set with [WithPrefix]. Its value is "1" and its
// absolute expiry, in milliseconds, is the token's exp (rounded up to the
// next millisecond, never down), so the key vanishes exactly when the token
// would have. The layout is part of this package's contract: a service in
// another language sees the same blocklist with
//
//	EXISTS blocklist:<jti>       1 while revoked, 0 otherwise
//	PEXPIRETIME blocklist:<jti>  the revocation's end in Unix milliseconds
//	                             (-2: not revoked, -1: revoked forever)
//
// A reader of tokens checked by package jwtguard must look at every entry
// a Guard writes, not only the jti (see "Session layout in the Store" in
// jwtguard's documentation): after verifying the signature, in one round
// trip,
//
//	PEXPIRETIME blocklist:<id>         id: the jti claim, or "sig:" + base64url(SHA-256(signature)) without one
//	PEXPIRETIME blocklist:sid:<sid>    when the token has a sid claim
//	PEXPIRETIME blocklist:sub:<sub>    when the token has a sub claim
//
// The token is revoked when either of the first two answers anything but
// -2, or when the third answers -1, or an end e ≥ 0 with the token's iat
// in milliseconds < e − 34560600000 + the reader's leeway in milliseconds
// (34560600000 ms is jwtguard.MaxRefreshTTL + 2 × jwtguard.MaxLeeway: e
// minus that is the LogoutAll cutoff). A sid or sub longer than
// blocklist.MaxIDLen − 4 bytes is stored as "sid#" or "sub#" and the
// unpadded base64url SHA-256 of the value instead. A service may revoke a
// token itself, keeping revocation monotonic and telling every watching
// cache at once, with
//
//	MULTI
//	PEXPIREAT blocklist:<jti> <exp-ms> GT
//	SET blocklist:<jti> 1 PXAT <exp-ms> NX
//	XADD blocklist: MAXLEN ~ 100000 * jti <jti> exp <exp-ms>
//	EXEC
//
// On Cluster the XADD goes to the stream of the master owning the key's
// slot (see Announcements), after the EXEC, on the same connection:
//
//	MULTI
//	PEXPIREAT blocklist:<jti> <exp-ms> GT
//	SET blocklist:<jti> 1 PXAT <exp-ms> NX
//	EXEC
//	XADD {<T(s)>}blocklist: MAXLEN ~ 100000 * jti <jti> exp <exp-ms>
//
// A writer that leaves the XADD out is honoured by a cached Store whose
// watch is live only once its "not revoked" answer for that id expires,
// after WatchNegativeTTL (a minute by default), instead of as fast as an
// announcement.
//
// An exp later than Redis can hold (math.MaxInt64 Unix milliseconds, in the
// year 292,278,994: PEXPIREAT and SET ... PXAT refuse a larger number with
// "invalid expire time") is stored as that latest expiry, in the key and
// in its announcement; a writer in another language must clamp the same
// way rather than let the number wrap.
//
// Ids are stored raw: Redis keys are binary-safe, so any byte string of 1 to
// blocklist.MaxIDLen bytes is its own key and no two ids collide. A key that
// exists without an expiry (written by something other than this package)
// counts as revoked forever.
//
// # Prefixes
//
// Stores sharing one Redis database must have prefixes of which none is a
// prefix of another: "auth:" and "billing:" are fine, "auth:" and
// "auth:v2:" are not. Keys are prefix+jti with nothing escaped, so the
// store with prefix "auth:" would read "auth:v2:" + jti as its own
// revocation of the id "v2:" + jti (and list it in ScanRevoked), and its
// revocation of "v2:" would be the key "auth:v2:", the other store's
// announcement stream. Within one store nothing collides: no id is empty,
// so no revocation has the stream's key. On Cluster the streams are
// "{<T(s)>}" + prefix, outside every prefix's key space as long as no
// prefix is empty or starts with "{". With announcements on, New refuses an
// empty prefix everywhere (the stream is the key the prefix names) and one
// starting with "{" on Cluster; a Store without announcements (WithoutEvents)
// with such a prefix can still write another's stream key. What can be
// detected cheaply is
// detected: a stream key that holds something other than a stream makes
// Revoke and RevokeOnce fail with [ErrPrefixOverlap] instead of announcing
// into the void, and [Store.CheckServer] reports it; the rest of an
// overlap is silent, so keep to the rule (a distinct first segment per
// store, such as "<service>:revoked:", keeps it).
//
// # Redis Cluster
//
// Each call touches one key, and Revoke also its master's stream (see
// Announcements), so the store needs little from the cluster beyond what
// go-redis's ClusterClient does already: route each key to the master that
// owns its slot and follow MOVED and ASK redirections; it reads CLUSTER
// SLOTS itself to name each master's stream (or calls the client's
// ClusterSlots option instead, when set: standalone servers the client
// shards itself answer no CLUSTER SLOTS). Wire it with
//
//	client := redis.NewClusterClient(&redis.ClusterOptions{
//		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
//		ContextTimeoutEnabled: true,
//	})
//	defer client.Close()
//	store := redisstore.New(client)
//
// When a master dies, its replica is promoted after the cluster's
// cluster-node-timeout and an election (two to three seconds with a
// timeout of one second). A dead master sends no MOVED, so go-redis would
// keep sending that master's slots to the dead address until its next
// periodic reload of the slot map (a minute by default). The Store asks
// the client to reload it (ClusterClient.ReloadState) after any failure a
// stale map can explain (a refused or broken connection, a timeout,
// CLUSTERDOWN, MOVED, TRYAGAIN), and again every 200 ms for as long as such
// failures keep coming (and five seconds after the last), so with the
// caller's default ClusterClient every call that starts more than about
// half a second after the promotion goes to the new master, and a Watch
// whose stream's master died reconnects to the new one as soon. Calls already
// sent to the dead master fail when the client's retries end (about two
// seconds with go-redis's defaults) or at their deadline. Calls to the
// other masters' slots are not affected, provided the cluster runs with
// "cluster-require-full-coverage no": with the default (yes) every master
// refuses every command while one master's slots are unserved, so one
// failing master stops every logout and every check until its replica
// takes over.
//
// Cluster hashes only the part of a key inside its first non-empty {...}, if
// there is one. Keep braces out of the prefix, or every revocation lands in
// one slot, on one master (and New refuses a prefix starting with "{"
// unless announcements are off, see Prefixes). Braces inside an id are harmless: they only pick
// that id's slot. Keep reads on the masters (the ClusterClient default, not
// ReadOnly or RouteByLatency): a replica lags, and could answer "not revoked"
// for a token revoked a moment ago.
//
// An ACL user for the Store on Cluster needs the stream keys besides the
// prefix's: they start with "{" (see Announcements), outside a key
// pattern such as ~blocklist:*, so grant ~blocklist:* ~{*}blocklist: (with
// your prefix). Without them every Revoke fails with NOPERM (nothing is
// lost, but no one can log out), and Watch returns the NOPERM error. A
// watch also reads CLUSTER NODES, and a writer CLUSTER SLOTS.
//
// # Announcements
//
// Every Revoke also announces the revocation on a Redis stream, so that
// other instances (package cached) learn of it within milliseconds instead
// of asking on every check:
//
//	XADD <stream> MAXLEN ~ 100000 * jti <jti> exp <exp-ms>
//
// On a single server and on a Ring there is one stream, whose key is the
// prefix itself ("blocklist:"): no id is empty, so no revocation has that
// key. On a single server the XADD joins the MULTI/EXEC of the token's key,
// so both are written or neither, in the same round trip. On a Ring the
// stream is one key on one shard and a transaction cannot cross shards, so
// the XADD is sent on its own at the same moment as the transaction
// (concurrently, from a goroutine) and Revoke waits for both.
//
// On Redis Cluster each master has a stream of its own, and a revocation
// is announced on the stream of the master that holds its key: no other
// master is on the path of a Revoke, so while one master is down (until
// its replica is promoted) the revocations whose keys live on the others
// are written and announced as usual. The stream of a master whose lowest
// slot is s has the key
//
//	{<T(s)>}<prefix>     for example {3560}blocklist: for slot 0, {18403}blocklist: for 5461
//
// where T(s) is the smallest decimal integer whose hash slot is s (CRC16 of
// its digits, modulo 16384; every slot has one below 110,000). The hash
// tag puts the stream in slot s, on that master; it comes first so that no
// stream key starts with the prefix, and no revocation's key can be a
// stream (see Prefixes). Revoke sends, on one connection to the key's
// master, in one round trip,
//
//	MULTI
//	PEXPIREAT <prefix><jti> <exp-ms> GT
//	SET <prefix><jti> 1 PXAT <exp-ms> NX
//	EXEC
//	XADD {<T(s)>}<prefix> MAXLEN ~ 100000 * jti <jti> exp <exp-ms>
//
// (and WAIT after both under WithWait): the key is written before its
// announcement, but not atomically with it, so an error from Revoke may
// leave the key written and unannounced (see below). The Store reads
// CLUSTER SLOTS when it first writes, again every second while it writes
// (in the background; before the write when it wrote nothing for 1.5 s),
// and after a MOVED or a failure the slot map can explain. When the XADD
// alone answers MOVED, or its answer comes more than 1.5 s after the map
// that named the stream was read (a request delayed on its way, a map
// kept because CLUSTER SLOTS failed), the Store asks the key's master
// itself for its slots (CLUSTER SLOTS on it, one more round trip) and
// announces again on the stream they name, if another one, so an
// acknowledged announcement is never left on a stream nobody reads. A
// watch reads the topology (CLUSTER NODES) once a second, and before it
// reports Resumed. A failover keeps the masters' slots, so it keeps their
// stream keys: the watch follows each stream to the promoted replica. A
// resharding that moves a master's lowest slot gives it another stream
// key; writers use it within 1.5 s (as soon as the nodes they ask know of
// the move), and a watch reports Lost, waits two seconds for them, and
// reads the new set of streams, ending in Synced. A slot moved away and
// back between two readings leaves the set of streams as it was, but
// writers announced meanwhile on streams no watch read: the watch tells
// it from the masters' config epochs (raised by every slot a master
// takes) and ends in Synced too. Revocations announced while a watch has
// not yet noticed a resharding (up to a second) reach its subscriber at
// that Synced.
//
// A reader in another language follows the announcements on Cluster with:
// CLUSTER SHARDS (or CLUSTER SLOTS); for each master, its lowest slot s and
// the key {<T(s)>}<prefix>; XREAD of each key from the master serving it
// (one connection each, or one XREAD per master); and, on a MOVED, a
// failed connection, or every few seconds when the list of shards or a
// master's config epoch changes, the same again, treating what it held as
// possibly incomplete. Revocations of one id come in order on one stream;
// revocations of different ids, on different masters' streams, may be read
// in another order than they were made.
//
// RevokeOnce announces only when it wins: on a single server in one script
// (SET NX, then XADD), on Cluster and Ring with a second round trip paid by
// the winner (on Cluster to the same master). If Revoke returns an error
// the announcement may be missing even though the key was written: retry
// the Revoke (it is idempotent), or watchers learn of it only when they
// next read the key, and a cached replica (which reads no key) not before
// its next full load. A service in another language that revokes by
// writing keys itself should send the XADD too.
//
// Why a stream and not pub/sub: PUBLISH is fire-and-forget, so a watcher
// whose connection drops for a moment misses what was published meanwhile
// and cannot tell what it missed. A stream keeps the last entries (at least
// WithStreamMaxLen, 100,000 by default, about 10 MB in Redis), a watcher
// resumes after a disconnection from the last entry id it read, and it can
// prove it missed nothing: each read is checked, in the same MULTI/EXEC,
// against the stream's counters (XINFO STREAM: entries-added, which must
// equal what the watch counted, and the last id, which never goes back in
// one stream). An entry trimmed or deleted before it was read, a stream
// deleted and made again, or a Redis that lost its data breaks the count:
// only then must the watch start over. WithoutEvents turns announcements
// off; WithStreamMaxLen sets the history kept.
//
// Counters alone cannot tell a stream from one made after it was deleted
// or lost (entries trimmed unread can make up any difference), so a
// watcher marks the stream it reads with a consumer group named
// "blocklist-incarnation-" and 24 hex digits, created once per stream by
// the first watcher that finds none (XGROUP CREATE <stream> <name> $
// MKSTREAM, which makes the stream, empty, when it is missing), and
// checks on every read that the group is still there: a stream deleted
// and made again, however fast, has none. Nothing reads through these
// groups and they hold no pending entries; a reader or writer in another
// language ignores them and must not create or destroy groups with that
// prefix. The watch therefore needs, besides reading, the right to run
// XGROUP CREATE on the stream key; without it Watch returns an error. A
// watch through a client of a replica (which refuses XGROUP CREATE with
// READONLY) can only use a mark a watch on the master made: until then it
// reports Lost and tries again.
//
// Watch (blocklist.WatchStore) reads the stream with XREAD BLOCK, on a
// connection of its own with its own deadlines (on Cluster, one per
// master's stream, and their events merged: Lost when one is lost, Resumed
// when every one lost has proved it missed nothing, Synced otherwise; on a
// Ring, to the shard the ring routes the stream to), so it notices a
// broken link at the first failed read and a silent server within
// WatchSilenceBound;
// ScanRevoked (blocklist.ScanStore) lists every live revocation with SCAN;
// package cached uses both for its replica mode.
//
// # Deadlines and failures
//
// A context that is already done fails before any work. Give every request
// a deadline, and set ContextTimeoutEnabled in the client's options so that
// the deadline also bounds reads and writes on an open connection; without it
// go-redis bounds them by its ReadTimeout and WriteTimeout instead, and only
// dialing, pool waits and retry backoff follow the context. With its default
// options go-redis keeps retrying a server that is down for about two
// seconds (MaxRetries, DialerRetries, DialerRetryTimeout) before it gives up,
// unless the context ends first. Any error from go-redis
// (server down, timeout, a reply of the wrong type) comes back wrapped as
// "redisstore: ...", never as "not revoked". When the server comes back, the
// same Store and client work again: go-redis reconnects by itself.
//
// # Durability
//
// A revocation is as durable as the Redis server's persistence makes it.
// Without persistence (the default of many deployments and containers) a
// restart or failover to an empty replica forgets every logout, and the
// logged-out tokens work again until their exp. With "appendonly yes" and
// "appendfsync always", every Revoke that returned nil survives a crash of
// Redis or its host, at the cost of one fsync per write; "appendfsync
// everysec" (Redis's default once appendonly is on) is much cheaper and can
// lose about the last second or two of acknowledged revocations in a crash. RDB snapshots alone lose everything written since
// the last snapshot.
//
// Replication is asynchronous: a master acknowledges a write before its
// replicas have it, so a failover can lose revocations the old master had
// acknowledged, as many as it took in the replica's lag (seconds of
// logouts when a replica falls behind). [WithWait] closes that window: each
// write is followed by WAIT on its own connection, and returns an error
// wrapping [ErrNotReplicated] unless enough replicas acknowledged it, so a
// Revoke that returned nil survives a failover to one of them. A WAIT sent
// by the caller after Revoke does not do this: it runs on another
// connection (on Cluster, often another master) and counts the replicas of
// that connection's own last write, so it can answer "replicated" for a
// revocation that is not.
//
// Run Redis with "maxmemory-policy noeviction" (its default). Every
// revocation is a key with an expiry, so the volatile-* policies evict
// revocations first when memory runs out, and the allkeys-* ones may evict
// them or the stream: a logged-out token then works again, silently. With
// noeviction a full Redis refuses the write, and Revoke returns an error.
//
// [Store.CheckServer] reads all of this from the servers themselves (every
// master and replica of a Cluster) and reports each setting that can lose revocations
// with a sentinel error: [ErrEviction], [ErrServerVersion] and
// [ErrStreamTooShort] for losses while Redis runs, [ErrNotDurable] for
// losses on a restart or crash. Call it when the service starts, and from
// its health check.
package redisstore
