package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist"
)

var (
	_ blocklist.WatchStore = (*Store)(nil)
	_ blocklist.ScanStore  = (*Store)(nil)
)

// DefaultStreamMaxLen is how many announcements the stream keeps at least
// when WithStreamMaxLen is not given: a watcher cut off for fewer new
// revocations than this catches up without a gap.
const DefaultStreamMaxLen = 100_000

const (
	// watchBatch is the most entries one read of the stream returns; a
	// read returning fewer is caught up.
	watchBatch = 1000
	// watchBlock is how long one XREAD waits for news. Stopping a watch
	// waits for the read in flight, so it is short; an idle watch makes
	// four cheap reads a second.
	watchBlock = 250 * time.Millisecond
	// replayMargin is how much of the stream a watch reads again when it
	// (re)starts: on Cluster a revocation's key and its announcement are
	// written at the same moment on two masters, so an announcement just
	// before the starting point may belong to a key not yet written when
	// the subscriber reloads. Repeated revocations are harmless.
	replayMargin = time.Second
	// The backoff between attempts while the server cannot be reached.
	minBackoff, maxBackoff = 50 * time.Millisecond, time.Second
)

// WithoutEvents turns announcements off: Revoke writes only the token's
// key, as before this feature existed, and Watch returns an error wrapping
// errors.ErrUnsupported. Use it when no process watches, to save the XADD.
func WithoutEvents() Option {
	return func(c *config) { c.noEvents = true }
}

// WithStreamMaxLen sets how many announcements the stream keeps at least
// (default DefaultStreamMaxLen); Redis trims older ones (MAXLEN ~ n, so it
// may keep a little more). A watcher that falls further behind than n
// revocations, or is cut off while n revocations are made, cannot resume
// without a gap and reports Synced instead of Resumed (package cached then
// distrusts its "not revoked" answers, or reloads its replica). Each entry
// costs Redis about 100 bytes with a 36-byte id. n below 1 keeps the
// default.
func WithStreamMaxLen(n int64) Option {
	return func(c *config) {
		if n >= 1 {
			c.streamMax = n
		}
	}
}

// Prefix returns the key prefix of the Store (see WithPrefix).
func (s *Store) Prefix() string { return s.prefix }

// Stream returns the key of the stream revocations are announced on: the
// prefix itself (no id is empty, so no revocation has that key), or "" when
// WithoutEvents was given.
func (s *Store) Stream() string { return s.stream }

// announceCmd returns the XADD that announces that jti is revoked until ms.
func (s *Store) announceCmd(ctx context.Context, jti string, ms int64) *redis.StringCmd {
	return redis.NewStringCmd(ctx, "xadd", s.stream, "maxlen", "~", s.streamMax, "*", "jti", jti, "exp", ms)
}

// announceAsync sends the announcement at once, beside the caller's own
// command, and reports its outcome on the returned channel.
func (s *Store) announceAsync(ctx context.Context, jti string, ms int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		cmd := s.announceCmd(ctx, jti, ms)
		_ = s.client.Process(ctx, cmd)
		done <- cmd.Err()
	}()
	return done
}

// revokeOnceScript is RevokeOnce on a single server: the SET NX and, only
// when it won, the announcement, in one round trip and atomically.
var revokeOnceScript = redis.NewScript(`
if redis.call('SET', KEYS[1], '1', 'PXAT', ARGV[1], 'NX') then
	redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'jti', ARGV[2], 'exp', ARGV[1])
	return 1
end
return 0`)

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
// Revoke announces on (see the package documentation, "Announcements"). It
// holds one connection of the client's pool (on Cluster, of the master
// owning the stream) while it runs, in reads of at most a quarter second,
// so it returns within about that long once ctx is done.
//
// It starts a second before the stream's last entry (announcements seen
// twice are harmless; see blocklist.Revoked) and reports Synced. When a read
// fails it reports Lost, retries with a backoff of 50 ms doubling to 1 s,
// and on reconnecting reads on from the last entry it delivered: if the
// stream still holds everything after it, it delivers the missed
// announcements and reports Resumed; if Redis trimmed some of them (more
// than WithStreamMaxLen revocations while it was away), or the stream was
// deleted or lost with the server's data, it starts again and reports
// Synced. A killed server is noticed at once; a frozen one after the read's
// deadline (a quarter second plus two seconds when the client's
// ContextTimeoutEnabled is set, the client's ReadTimeout otherwise).
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
	var (
		pos     streamID // the last entry delivered, or where to start after
		added   int64    // the stream's entries-added when last asked
		synced  bool     // pos is meaningful
		lost    bool     // Lost reported, and neither Resumed nor Synced since
		block   bool     // caught up: the next read may wait for news
		backoff time.Duration
	)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("redisstore: watch: %w", err)
		}
		var err error
		if !synced {
			if pos, added, err = s.startPosition(ctx); err == nil {
				synced, lost, block = true, false, false
				fn(blocklist.Event{Kind: blocklist.Synced})
			}
		} else {
			var n int
			var gap bool
			if n, gap, err = s.read(ctx, &pos, &added, block, fn); err == nil {
				switch {
				case gap:
					synced = false
				case lost && n < watchBatch:
					lost = false
					fn(blocklist.Event{Kind: blocklist.Resumed})
				}
				block = n < watchBatch
			}
		}
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redisstore: watch: %w", ctx.Err())
		}
		if !lost {
			lost = true
			fn(blocklist.Event{Kind: blocklist.Lost})
		}
		block = false
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("redisstore: watch: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// startPosition returns where a watch starts reading: replayMargin before
// the stream's last entry, or its beginning when there is none; and the
// stream's entries-added count.
func (s *Store) startPosition(ctx context.Context) (streamID, int64, error) {
	rctx, cancel := context.WithTimeout(ctx, watchBlock+2*time.Second)
	defer cancel()
	info, err := s.client.XInfoStream(rctx, s.stream).Result()
	if isNoSuchKey(err) {
		return streamID{}, 0, nil
	}
	if err != nil {
		return streamID{}, 0, err
	}
	last, err := parseStreamID(info.LastGeneratedID)
	if err != nil {
		return streamID{}, 0, err
	}
	var pos streamID
	if margin := uint64(replayMargin / time.Millisecond); last.ms > margin {
		// Just before the first possible entry of the margin's first ms.
		pos = streamID{ms: last.ms - margin - 1, seq: math.MaxUint64}
	}
	// Never before the oldest entry held: read would take the entries
	// trimmed before it for a gap.
	switch first, ok := firstEntry(info); {
	case !ok:
		pos = last // an empty stream: nothing to replay
	case pos.less(first.prev()):
		pos = first.prev()
	}
	return pos, info.EntriesAdded, nil
}

// read delivers the entries after *pos, at most watchBatch, waiting up to
// watchBlock for one when block is set, and moves *pos to the last one. In
// the same round trip it asks the stream whether Redis deleted an entry
// after *pos before this watch read it: that is a gap. Trimming (MAXLEN)
// removes the oldest entries without recording them in
// max-deleted-entry-id (Redis 7.0), so a gap is also an oldest entry held
// that is not the one right after *pos, and a stream emptied after *pos.
// So is a
// stream that counts fewer entries ever added than *added, the count it had
// at the last read: it was deleted and made again, and its ids, taken from
// the clock, may follow *pos although the old stream's entries after *pos
// were never read.
func (s *Store) read(ctx context.Context, pos *streamID, added *int64, block bool, fn func(blocklist.Event)) (n int, gap bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, watchBlock+2*time.Second)
	defer cancel()
	args := &redis.XReadArgs{Streams: []string{s.stream, pos.String()}, Count: watchBatch, Block: -1}
	if block {
		args.Block = watchBlock
	}
	pipe := s.client.Pipeline()
	xread := pipe.XRead(rctx, args)
	xinfo := pipe.XInfoStream(rctx, s.stream)
	_, _ = pipe.Exec(rctx)

	streams, err := xread.Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, err
	}
	from := *pos
	for _, st := range streams {
		for _, m := range st.Messages {
			id, err := parseStreamID(m.ID)
			if err != nil {
				return n, false, err
			}
			*pos = id
			n++
			jti, _ := m.Values["jti"].(string)
			expStr, _ := m.Values["exp"].(string)
			ms, err := strconv.ParseInt(expStr, 10, 64)
			if err != nil || blocklist.ValidateID(jti) != nil {
				continue // not an announcement of ours
			}
			if exp := time.UnixMilli(ms); exp.After(time.Now()) {
				fn(blocklist.Event{Kind: blocklist.Revoked, JTI: jti, Exp: exp})
			}
		}
	}

	info, err := xinfo.Result()
	switch {
	case isNoSuchKey(err):
		// No stream: nothing was ever announced, or it was deleted (or
		// lost with the server's data) after we read from it.
		return n, from != (streamID{}), nil
	case err != nil:
		return n, false, err
	}
	if info.EntriesAdded < *added {
		return n, true, nil // a new stream, with fewer entries than the one we read
	}
	*added = info.EntriesAdded
	if first, ok := firstEntry(info); from == (streamID{}) {
		// Read from the stream's beginning: nothing before it to miss.
	} else if ok {
		if from.less(first.prev()) {
			return n, true, nil // entries after from were trimmed
		}
	} else if last, err := parseStreamID(info.LastGeneratedID); err == nil && from.less(last) {
		return n, true, nil // emptied after from
	}
	if info.MaxDeletedEntryID != "" {
		deleted, err := parseStreamID(info.MaxDeletedEntryID)
		if err != nil {
			return n, false, err
		}
		if from.less(deleted) {
			return n, true, nil
		}
	}
	if last, err := parseStreamID(info.LastGeneratedID); err == nil && last.less(*pos) {
		return n, true, nil // a new stream, younger than the one we read
	}
	return n, false, nil
}

// isNoSuchKey reports whether err is Redis's answer to XINFO STREAM on a
// missing key. Redis has no error code for it beyond ERR, so the message
// is matched; any other error, a connection's included, does not match.
func isNoSuchKey(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "ERR no such key")
}

// ScanRevoked implements blocklist.ScanStore with SCAN over the keys of the
// prefix (on every master of a Cluster, every shard of a Ring, at once),
// COUNT 1000, and one pipeline of PEXPIRETIME per batch of keys. It costs
// about one round trip per thousand keys of the prefix, and reads only
// them; with an empty prefix it would report every key of the database
// as a revocation, so give watched stores a prefix of their own. Keys that
// vanish during the scan are skipped; during resharding of a Cluster a key
// may be reported twice.
func (s *Store) ScanRevoked(ctx context.Context, fn func(jti string, until time.Time) error) error {
	if s == nil || s.client == nil {
		return fmt.Errorf("%w (scan revoked)", errNilClient)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: scan revoked: %w", err)
	}
	var mu sync.Mutex // fn is never called concurrently
	var fnErr error
	scan := func(ctx context.Context, c redis.Cmdable) error {
		match := globEscape(s.prefix) + "*"
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return fmt.Errorf("redisstore: scan revoked: %w", err)
			}
			if err := s.reportKeys(ctx, c, keys, &mu, &fnErr, fn); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	default:
		err = scan(ctx, s.client)
	}
	if fnErr != nil {
		return fnErr
	}
	return err
}

// reportKeys reads the expiry of keys in one pipeline and calls fn for
// each key that is a live revocation.
func (s *Store) reportKeys(ctx context.Context, c redis.Cmdable, keys []string,
	mu *sync.Mutex, fnErr *error, fn func(string, time.Time) error) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := c.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = redis.NewIntCmd(ctx, "pexpiretime", k)
		_ = pipe.Process(ctx, cmds[i])
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisstore: scan revoked: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if *fnErr != nil {
		return *fnErr
	}
	for i, k := range keys {
		jti := k[len(s.prefix):]
		if k == s.stream || blocklist.ValidateID(jti) != nil {
			continue
		}
		var until time.Time
		switch ms := cmds[i].Val(); {
		case ms == -2:
			continue // expired or deleted since SCAN saw it
		case ms == -1:
			until = forever
		case ms < 0:
			return fmt.Errorf("redisstore: scan revoked: PEXPIRETIME answered %d", ms)
		default:
			until = time.UnixMilli(ms)
		}
		if err := fn(jti, until); err != nil {
			*fnErr = err
			return err
		}
	}
	return nil
}

// globEscape escapes the characters SCAN's MATCH pattern gives a meaning.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
