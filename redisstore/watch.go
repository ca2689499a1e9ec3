package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
)

var _ blocklist.WatchStore = (*Store)(nil)

// WatchSilenceBound is the longest a watch waits for any reply of the
// server: a server that stops answering (frozen, or cut off by a network
// that drops packets) is reported Lost at most this long after the watch's
// last read was sent, and a killed server or a closed connection at once.
// It is a bound of the watch itself, whatever the client's timeouts and
// retries.
const WatchSilenceBound = time.Second

const (
	// watchBatch is the most entries one read of the stream returns; a
	// read returning fewer is caught up.
	watchBatch = 1000
	// watchBlock is how long one XREAD waits for news. Stopping a watch
	// waits for the read in flight, so it is short; an idle watch makes
	// four blocking reads a second, each followed by a check of the
	// stream's counters.
	watchBlock = 250 * time.Millisecond
	// replayMargin is how much of the stream a watch reads again when it
	// (re)starts: on a Ring a revocation's key and its announcement are
	// written at the same moment on two shards, so an announcement just
	// before the starting point may belong to a key not yet written when
	// the subscriber reloads. Repeated revocations are harmless.
	replayMargin = time.Second
	// The backoff between attempts while the server cannot be reached.
	minBackoff, maxBackoff = 50 * time.Millisecond, time.Second
	// markerPrefix begins the name of the consumer group that marks one
	// incarnation of the stream (see cursor.marker and the package
	// documentation, "Announcements"). Nothing reads through it.
	markerPrefix = "blocklist-incarnation-"
)

// streamID is the id of a stream entry, "ms-seq".
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, error) {
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("malformed stream id %q", s)
	}
	return streamID{ms, seq}, nil
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || id.ms == o.ms && id.seq < o.seq
}

// prev returns the greatest id below id (id must not be 0-0).
func (id streamID) prev() streamID {
	if id.seq == 0 {
		return streamID{ms: id.ms - 1, seq: math.MaxUint64}
	}
	return streamID{ms: id.ms, seq: id.seq - 1}
}

// firstEntry returns the id of the oldest entry the stream holds, and
// false when it holds none.
func firstEntry(info *redis.XInfoStream) (streamID, bool) {
	if info.Length == 0 {
		return streamID{}, false
	}
	first, err := parseStreamID(info.RecordedFirstEntryID)
	if err != nil || first == (streamID{}) {
		return streamID{}, false
	}
	return first, true
}

// Watch implements blocklist.WatchStore by reading the stream every
// Revoke announces on (see the package documentation, "Announcements").
//
// It reads through a connection of its own (on Cluster one per master, to
// each master's stream, merging their events as the package documentation
// describes; on a Ring to the shard the ring routes the stream to),
// dialled with the client's address, credentials, TLS and dialer but with
// no retries and its own deadlines, so the first failed read or write is
// reported as Lost at once and a server that stops answering is reported
// within WatchSilenceBound, whatever the client's retry and timeout
// settings. On a Ring it also checks before each read that the ring still
// routes the stream to that shard (a ring that marked a shard down sends
// the stream's writes elsewhere), and reports Lost when not; announcements
// made on another shard and moved back between two reads are not seen. It
// returns within about a quarter second once ctx is done.
//
// It starts a second before the stream's last entry (announcements seen
// twice are harmless; see blocklist.Revoked) and reports Synced. It then
// alternates a blocking XREAD (a quarter second at most), whose entries it
// delivers at once, with a MULTI/EXEC of XREAD and XINFO STREAM: an atomic
// snapshot of the entries after the last one delivered and of the stream's
// counters. Each snapshot that reaches the end of the stream proves that
// nothing was missed: the stream's entries-added must equal the count it
// had at the last proof plus the entries delivered since, its last id must
// not have gone back, the oldest entry the stream holds must not be past
// the last one delivered (nothing unread was trimmed), the last entry
// delivered (or the stream's last at the last proof) must still be there
// (nothing read was rolled back, whatever ids the entries added since
// have), and the stream must be the same incarnation: it carries the
// consumer group that marks it (created by the first watch that finds
// none, with MKSTREAM when the stream is missing), which no other stream
// has. Any entry trimmed (MAXLEN)
// or deleted before it was read, a stream deleted and made again at any
// speed, a Redis that lost its data or rolled back in a restart, or a
// failover to a replica that lacks announcements, breaks one of these;
// the watch then starts over and reports Synced. When a read fails it
// reports Lost, retries with a backoff of 50 ms doubling to 1 s, and
// reports Resumed only once a snapshot proved that every announcement made
// meanwhile was delivered.
//
// Besides reading, the watch writes once per incarnation of the stream:
// XGROUP CREATE with MKSTREAM. A user whose ACL forbids it (or any command
// the watch sends) cannot watch: Watch returns an error naming the
// command refused.
func (s *Store) Watch(ctx context.Context, fn func(blocklist.Event)) error {
	switch {
	case s == nil || s.client == nil:
		return fmt.Errorf("%w (watch)", errNilClient)
	case fn == nil:
		return errors.New("redisstore: watch: nil function")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: watch: %w", err)
	}
	if s.stream == "" {
		return fmt.Errorf("redisstore: watch: announcements are off (WithoutEvents): %w", errors.ErrUnsupported)
	}
	if s.streams != nil {
		return s.watchCluster(ctx, fn)
	}
	return s.watchStream(ctx, fn)
}

// watchStream is Watch on one stream, s.stream.
func (s *Store) watchStream(ctx context.Context, fn func(blocklist.Event)) error {
	var cur cursor
	var (
		conn     redis.Cmdable // nil until dialled, and after a failure
		closeFn  func()
		synced   bool // cur is meaningful
		lost     bool // Lost reported, and neither Resumed nor Synced since
		caughtUp bool // the last snapshot reached the end: wait for news
		backoff  time.Duration
	)
	defer func() {
		if closeFn != nil {
			closeFn()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redisstore: watch: %w", err)
		}
		var err error
		if conn == nil {
			conn, closeFn, err = s.watchConn(ctx)
		} else {
			err = s.checkRoute(conn)
		}
		switch {
		case err != nil:
		case !synced:
			if cur, err = s.startCursor(ctx, conn); err == nil {
				synced, lost, caughtUp = true, false, false
				fn(blocklist.Event{Kind: blocklist.Synced})
			}
		case caughtUp:
			if err = s.waitRead(ctx, conn, &cur, fn); err == nil {
				caughtUp = false // a snapshot proves what it delivered
			}
		default:
			var done, gap bool
			if done, gap, err = s.snapshotRead(ctx, conn, &cur, fn); err == nil {
				switch {
				case gap:
					synced = false
				case done && lost:
					lost = false
					fn(blocklist.Event{Kind: blocklist.Resumed})
				}
				caughtUp = done && !gap
			}
		}
		if err == nil {
			backoff = 0
			continue
		}
		if closeFn != nil {
			closeFn()
		}
		conn, closeFn = nil, nil
		if isNoPerm(err) {
			// The user may not mark the stream (or read it): retrying
			// cannot help, and the caller must hear why.
			return fmt.Errorf("redisstore: watch: %w", err)
		}
		// On Cluster the next connection goes to the stream's master in
		// the client's slot map: have it reloaded, or a watch whose
		// process makes no other call would dial a dead master until the
		// client's periodic reload (a minute by default).
		s.noteFailure(err)
		if ctx.Err() != nil {
			return fmt.Errorf("redisstore: watch: %w", ctx.Err())
		}
		if !lost {
			lost = true
			fn(blocklist.Event{Kind: blocklist.Lost})
		}
		caughtUp = false
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		if err := waitBackoff(ctx, backoff); err != nil {
			return err
		}
	}
}

// waitBackoff waits d before a watch tries again, or returns the watch's
// error for the end of ctx if that comes first.
func waitBackoff(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("redisstore: watch: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// cursor is where a watch stands in the stream, and what it can prove.
type cursor struct {
	pos     streamID // the last entry delivered, or where to read after
	anchor  streamID // the stream's last id at the last proof
	ordinal int64    // the stream's entries-added at the last proof
	counted int64    // entries after anchor delivered since the last proof
	// held: pos is the id of an entry the stream held when the watch
	// last looked (one it delivered, or the last entry at a proof), so
	// it must still be there unless the stream lost what the watch read.
	held bool
	// marker names the consumer group that marks the incarnation of the
	// stream the cursor belongs to. Counters alone cannot tell a stream
	// from another one made after it was deleted or lost (entries trimmed
	// unread can make up any difference in entries-added), and a stream
	// made, announced on and deleted while the watch was away leaves no
	// counter at all; a group exists only in the incarnation it was
	// created in.
	marker string
}

// watchConn returns what a watch reads through, and how to close it: a
// client of its own with a single connection, no retries and the watch's
// deadlines, to the server (the master owning the stream on Cluster, the
// shard the Ring routes it to). For any other client, it is the Store's
// client itself.
func (s *Store) watchConn(ctx context.Context) (redis.Cmdable, func(), error) {
	var opts *redis.Options
	switch c := s.client.(type) {
	case *redis.Client:
		opts = c.Options()
	case *redis.ClusterClient:
		rctx, cancel := context.WithTimeout(ctx, WatchSilenceBound)
		defer cancel()
		node, err := c.MasterForKey(rctx, s.stream)
		if err != nil {
			return nil, nil, err
		}
		opts = node.Options()
	case *redis.Ring:
		node, err := c.GetShardClientForKey(s.stream)
		if err != nil {
			return nil, nil, err
		}
		opts = node.Options()
	default:
		return s.client, nil, nil
	}
	c := redis.NewClient(watchOptions(opts))
	return c, func() { _ = c.Close() }, nil
}

// errRerouted is the failure a watch reports when its Ring routes the
// stream to another shard than the one it reads.
var errRerouted = errors.New("the ring routes the stream to another shard")

// checkRoute returns errRerouted when the Store's client is a Ring that no
// longer routes the stream to the shard c reads from. Elsewhere a stream
// that moves (a Cluster slot migrated) answers MOVED on c.
func (s *Store) checkRoute(c redis.Cmdable) error {
	ring, ok := s.client.(*redis.Ring)
	if !ok {
		return nil
	}
	own, ok := c.(*redis.Client)
	if !ok {
		return nil
	}
	node, err := ring.GetShardClientForKey(s.stream)
	if err != nil {
		return err
	}
	if node.Options().Addr != own.Options().Addr {
		return errRerouted
	}
	return nil
}

// watchOptions are the options of a watch's own client: where and how to
// connect from the client's, the rest the watch's.
func watchOptions(o *redis.Options) *redis.Options {
	return &redis.Options{
		Network:                      o.Network,
		Addr:                         o.Addr,
		ClientName:                   o.ClientName,
		Dialer:                       o.Dialer,
		OnConnect:                    o.OnConnect,
		Protocol:                     o.Protocol,
		Username:                     o.Username,
		Password:                     o.Password,
		CredentialsProvider:          o.CredentialsProvider,
		CredentialsProviderContext:   o.CredentialsProviderContext,
		StreamingCredentialsProvider: o.StreamingCredentialsProvider,
		DB:                           o.DB,
		TLSConfig:                    o.TLSConfig,
		DisableIdentity:              o.DisableIdentity,
		IdentitySuffix:               o.IdentitySuffix,

		// The first failure is the watch's to report, not to hide.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           WatchSilenceBound,
		ReadTimeout:           WatchSilenceBound,
		WriteTimeout:          WatchSilenceBound,
		ContextTimeoutEnabled: true,
		PoolSize:              1,
		MaxIdleConns:          1,
	}
}

// startCursor returns where a watch starts: replayMargin before the
// stream's last entry, or its beginning when there is none, with the
// stream's last id and entries-added as the first proof, and the group
// that marks the stream's incarnation. A stream without one (or missing)
// gets one, created with MKSTREAM; the counters are read in the same
// MULTI/EXEC as the marker was found or made, so they belong to its
// incarnation.
func (s *Store) startCursor(ctx context.Context, c redis.Cmdable) (cursor, error) {
	rctx, cancel := context.WithTimeout(ctx, WatchSilenceBound)
	defer cancel()
	pipe := c.TxPipeline()
	xinfo := pipe.XInfoStream(rctx, s.stream)
	groups := pipe.XInfoGroups(rctx, s.stream)
	_, _ = pipe.Exec(rctx)
	info, err := xinfo.Result()
	var marker string
	switch {
	case isNoSuchKey(err):
	case err != nil:
		return cursor{}, err
	default:
		list, err := groups.Result()
		if err != nil {
			return cursor{}, err
		}
		for _, g := range list {
			if strings.HasPrefix(g.Name, markerPrefix) && (marker == "" || g.Name < marker) {
				marker = g.Name
			}
		}
	}
	if marker == "" {
		if marker, info, err = s.markStream(rctx, c); err != nil {
			return cursor{}, err
		}
	}
	last, err := parseStreamID(info.LastGeneratedID)
	if err != nil {
		return cursor{}, err
	}
	var pos streamID
	if margin := uint64(replayMargin / time.Millisecond); last.ms > margin {
		// Just before the first possible entry of the margin's first ms.
		pos = streamID{ms: last.ms - margin - 1, seq: math.MaxUint64}
	}
	// Never before the oldest entry held: a snapshot would take the
	// entries trimmed before it for a gap.
	switch first, ok := firstEntry(info); {
	case !ok:
		pos = last // an empty stream: nothing to replay
	case pos.less(first.prev()):
		pos = first.prev()
	}
	return cursor{pos: pos, anchor: last, ordinal: info.EntriesAdded, marker: marker}, nil
}

// markStream creates a consumer group of a new random name on the stream
// (and the stream, empty, if it is missing) and returns its name with the
// stream's counters read in the same MULTI/EXEC. Two watches that mark one
// incarnation at once make two groups; each keeps its own, and later ones
// take the least name.
func (s *Store) markStream(ctx context.Context, c redis.Cmdable) (string, *redis.XInfoStream, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	marker := markerPrefix + hex.EncodeToString(b[:])
	pipe := c.TxPipeline()
	create := pipe.XGroupCreateMkStream(ctx, s.stream, marker, "$")
	xinfo := pipe.XInfoStream(ctx, s.stream)
	_, _ = pipe.Exec(ctx)
	if err := create.Err(); err != nil {
		return "", nil, fmt.Errorf("mark the stream (XGROUP CREATE %s %s $ MKSTREAM): %w", s.stream, marker, err)
	}
	info, err := xinfo.Result()
	if err != nil {
		return "", nil, err
	}
	return marker, info, nil
}

// waitRead waits up to watchBlock for entries after cur.pos and delivers
// them.
func (s *Store) waitRead(ctx context.Context, c redis.Cmdable, cur *cursor, fn func(blocklist.Event)) error {
	rctx, cancel := context.WithTimeout(ctx, watchBlock+WatchSilenceBound)
	defer cancel()
	args := &redis.XReadArgs{Streams: []string{s.stream, cur.pos.String()}, Count: watchBatch, Block: watchBlock}
	streams, err := c.XRead(rctx, args).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	_, err = deliver(streams, cur, fn)
	return err
}

// snapshotRead reads the entries after cur.pos, at most watchBatch, and
// the stream's counters in one MULTI/EXEC, delivers the entries, and
// reports whether it reached the end of the stream (done) and whether
// announcements were lost before this watch read them (gap), or the stream
// is no longer the incarnation cur.marker marks. A snapshot that is done
// and finds no gap is a proof: cur's anchor moves to the stream's last id.
func (s *Store) snapshotRead(ctx context.Context, c redis.Cmdable, cur *cursor, fn func(blocklist.Event)) (done, gap bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, WatchSilenceBound)
	defer cancel()
	pipe := c.TxPipeline()
	xread := pipe.XRead(rctx, &redis.XReadArgs{Streams: []string{s.stream, cur.pos.String()}, Count: watchBatch, Block: -1})
	xinfo := pipe.XInfoStream(rctx, s.stream)
	// Answers NOGROUP unless the stream is the incarnation cur.marker
	// marks (and exists).
	mark := pipe.XPending(rctx, s.stream, cur.marker)
	// The entry at the position, which must still be there (see below).
	var held *redis.XMessageSliceCmd
	if cur.held {
		held = pipe.XRangeN(rctx, s.stream, cur.pos.String(), cur.pos.String(), 1)
	}
	_, _ = pipe.Exec(rctx)

	streams, err := xread.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, false, err
	}
	from := cur.pos
	n, err := deliver(streams, cur, fn)
	if err != nil {
		return false, false, err
	}
	info, err := xinfo.Result()
	switch {
	case isNoSuchKey(err):
		// No stream: the watch made or found it, so it was deleted, or
		// lost with the server's data.
		return true, true, nil
	case err != nil:
		return false, false, err
	}
	switch err := mark.Err(); {
	case isNoGroup(err):
		return true, true, nil // another incarnation
	case err != nil:
		return false, false, err
	}
	if held != nil {
		// A stream rolled back past an entry this watch read (a
		// failover to a replica that lacked it, a restart that lost it)
		// may have taken as many new entries since as it lost, making up
		// the count below and its last id; on a server whose clock is
		// behind, their ids are below the position, where no read from
		// it looks. Trimmed or deleted entries are caught below anyway.
		switch msgs, err := held.Result(); {
		case err != nil:
			return false, false, err
		case len(msgs) == 0:
			return true, true, nil
		}
	}
	last, err := parseStreamID(info.LastGeneratedID)
	if err != nil {
		return false, false, err
	}
	if last.less(cur.anchor) {
		return true, true, nil // a new stream, younger than the one proved
	}
	// Signs that Redis removed entries after the ones read (and after the
	// replay of a start) before this watch read them. The count below
	// would catch them too, but not a restart that rolled the stream back
	// to an older state of the same incarnation and then took as many
	// entries, trimmed unread, as it had lost. An oldest entry past the
	// position can also mean that only entries already read were trimmed,
	// with the watch MAXLEN entries behind: it then starts over too.
	after := from
	if after.less(cur.anchor) {
		after = cur.anchor
	}
	if first, ok := firstEntry(info); ok && after != (streamID{}) && after.less(first.prev()) {
		return true, true, nil // trimmed (MAXLEN) before being read
	}
	if deleted, err := parseStreamID(info.MaxDeletedEntryID); err == nil && after.less(deleted) {
		return true, true, nil // deleted (XDEL) before being read
	}
	if n >= watchBatch {
		return false, false, nil // more to read before the proof
	}
	// The proof: every entry added since the anchor was delivered. Fewer
	// entries ever added than that means a rollback; more, entries
	// removed before they were read.
	if info.EntriesAdded != cur.ordinal+cur.counted {
		return true, true, nil
	}
	cur.anchor, cur.ordinal, cur.counted = last, info.EntriesAdded, 0
	if cur.pos.less(last) {
		cur.pos = last
		cur.held = info.LastEntry.ID == info.LastGeneratedID
	}
	return true, false, nil
}

// deliver reports the announcements among streams' entries, moves cur.pos
// to the last entry and counts the entries after cur.anchor; it returns
// how many entries there were.
func deliver(streams []redis.XStream, cur *cursor, fn func(blocklist.Event)) (int, error) {
	n := 0
	now := time.Now()
	for _, st := range streams {
		for _, m := range st.Messages {
			id, err := parseStreamID(m.ID)
			if err != nil {
				return n, err
			}
			if !cur.pos.less(id) {
				continue // not after the position: cannot happen, but never count twice
			}
			cur.pos, cur.held = id, true
			n++
			if cur.anchor.less(id) {
				cur.counted++
			}
			jti, _ := m.Values["jti"].(string)
			expStr, _ := m.Values["exp"].(string)
			ms, err := strconv.ParseInt(expStr, 10, 64)
			if err != nil || blocklist.ValidateID(jti) != nil {
				continue // not an announcement of ours
			}
			if exp := time.UnixMilli(ms); exp.After(now) {
				fn(blocklist.Event{Kind: blocklist.Revoked, JTI: jti, Exp: exp, Announced: time.UnixMilli(int64(id.ms))})
			}
		}
	}
	return n, nil
}

// isNoPerm reports whether err is Redis's NOPERM error: the user's ACL
// forbids the command or the key.
func isNoPerm(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOPERM")
}

// isNoGroup reports whether err is Redis's NOGROUP error: the stream or
// the consumer group does not exist.
func isNoGroup(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOGROUP")
}

// isNoSuchKey reports whether err is Redis's answer to XINFO STREAM on a
// missing key. Redis has no error code for it beyond ERR, so the message
// is matched; any other error, a connection's included, does not match.
func isNoSuchKey(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "ERR no such key")
}
