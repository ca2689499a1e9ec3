package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated is wrapped by the error a write returns under
// [WithWait] when fewer replicas than asked acknowledged it within the
// timeout. The write was applied on the master and may survive (it is
// stored, and may yet reach the replicas), or may be lost if the master
// fails before it does: treat it as any other failed write and retry.
var ErrNotReplicated = errors.New("redisstore: write not acknowledged by enough replicas")

// WithWait makes every write of the Store (Revoke, and RevokeOnce when it
// wins) wait until numReplicas replicas of the master that took it have
// acknowledged it, for at most timeout, with Redis's WAIT command sent on
// the same connection right after the write, in the same round trip. When
// fewer acknowledge in time the write returns an error wrapping
// [ErrNotReplicated]. It applies to a standalone server with replicas (a
// *redis.Client, also one from NewFailoverClient), to each master of a
// Redis Cluster, and to each shard of a Ring. The announcement waits too:
// on a single server it is in the write's transaction, on Cluster it
// follows the write on the same connection to the same master (its
// stream, see the package documentation), so one WAIT covers both; on a
// Ring it is an XADD on the stream's shard, which waits for that shard's
// replicas, so that shard and its replicas are on the path of every
// Revoke.
//
// What it guarantees: a write that returned nil is held by the master and
// by numReplicas of its replicas, so a failover that promotes one of them
// keeps it. With one replica per master and numReplicas 1, that replica is
// the one promoted; with more replicas, Redis Cluster lets the most
// up-to-date replica stand for election first (and Sentinel prefers it), so
// it is usually one that acknowledged; numReplicas equal to the number of
// replicas makes it certain. It does not make the write durable on
// disk (that is appendfsync's job), nor survive a failover to a replica that
// did not acknowledge.
//
// What it costs: WAIT answers as soon as enough replicas acknowledge,
// normally one replication round trip between master and replica after the
// write, on the write's own round trip (no extra round trip from the
// client). While replicas lag or are down, each write waits the whole
// timeout and then fails. Keep timeout well below the client's ReadTimeout
// (3 s by default) and below the callers' deadlines: go-redis ends the read
// at whichever comes first, and the write then fails with a timeout instead
// of ErrNotReplicated.
//
// After a failover the promoted replica has no replica of its own until
// another one (the old master restarted, typically) has synchronised with
// it: meanwhile its slots' writes return ErrNotReplicated under
// WithWait(1, …). Run two replicas per master to keep them acknowledged
// through a failover.
//
// numReplicas 0 turns waiting off (the default). A negative numReplicas, or
// a timeout under a millisecond with numReplicas above 0 (WAIT counts whole
// milliseconds, and 0 would block forever), makes New panic: it is a wiring
// mistake, not a condition to discover on the first logout. WithWait also
// makes New panic with a client other than a *redis.Client,
// *redis.ClusterClient or *redis.Ring, whose write connection the Store
// cannot reach.
func WithWait(numReplicas int, timeout time.Duration) Option {
	return func(c *config) {
		switch {
		case numReplicas < 0:
			c.err = fmt.Errorf("redisstore: WithWait: numReplicas %d is negative", numReplicas)
		case numReplicas > 0 && timeout < time.Millisecond:
			c.err = fmt.Errorf("redisstore: WithWait: timeout %v is under a millisecond (WAIT counts whole milliseconds; 0 waits forever)", timeout)
		default:
			c.waitReplicas = numReplicas
			// Round up: never wait less than asked.
			c.waitMS = int64((timeout + time.Millisecond - 1) / time.Millisecond)
		}
	}
}

// master returns the client of the server that takes writes of key: the
// client itself on a single server, the master owning key's slot on
// Cluster (in the client's current view of the slots), key's shard on a
// Ring.
func (s *Store) master(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.client.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Ring:
		return c.GetShardClientForKey(key)
	}
	return nil, fmt.Errorf("a %T gives no access to its masters' connections", s.client)
}

// waitSupported reports whether master can serve client's type.
func waitSupported(client redis.UniversalClient) bool {
	switch client.(type) {
	case *redis.Client, *redis.ClusterClient, *redis.Ring:
		return true
	}
	return false
}

// writeTx runs cmds, all on key's slot, in one MULTI/EXEC on the master
// owning key, followed by WAIT when WithWait is set, and leaves each
// command's reply in it. Without WithWait it returns the first error of
// cmds, as a TxPipeline does (redis.Nil included); with it, the error of
// the transaction or of WAIT (ErrNotReplicated), whatever the commands
// answered, since even a SET NX that found the key comes with a
// PEXPIREAT that may have changed it. After a failure that may mean the
// slot map is stale it asks a Cluster client to reload it.
func (s *Store) writeTx(ctx context.Context, key string, cmds ...redis.Cmder) error {
	var err error
	if s.waitReplicas > 0 {
		err = s.writeOn(ctx, pipeWrite{key: key, tx: true, cmds: cmds})
	} else {
		pipe := s.client.TxPipeline()
		for _, c := range cmds {
			_ = pipe.Process(ctx, c)
		}
		_, err = pipe.Exec(ctx)
	}
	s.noteFailure(err)
	return err
}

// write runs cmd, on key, on the master owning key, followed by WAIT when
// WithWait is set; failures are noted as in writeTx.
func (s *Store) write(ctx context.Context, key string, cmd redis.Cmder) error {
	var err error
	if s.waitReplicas > 0 {
		err = s.writeOn(ctx, pipeWrite{key: key, cmds: []redis.Cmder{cmd}})
	} else {
		_ = s.client.Process(ctx, cmd)
		err = cmd.Err()
	}
	s.noteFailure(err)
	return err
}

// maxRedirects bounds how many MOVED or ASK redirections one write follows,
// as go-redis's own default does.
const maxRedirects = 3

// pipeWrite is a write that writeOn sends by hand on the connection of the
// master owning key.
type pipeWrite struct {
	key  string
	tx   bool          // send cmds in MULTI/EXEC
	cmds []redis.Cmder // commands on key's slot; none when only announcing
	// jti, when not empty, is announced as revoked until ms on the stream
	// of the master owning key (Cluster only), after cmds.
	jti string
	ms  int64
}

// writeOn sends w to the master owning w.key, in one pipeline on one
// connection: w.cmds (in MULTI/EXEC when w.tx), then on Cluster the XADD
// of the announcement on that master's stream, then, under WithWait, WAIT:
// WAIT counts the replicas that acknowledged its own connection's last
// write, so on any other connection it would answer for some other write,
// and after both it covers both. Results land in w.cmds as a TxPipeline
// would leave them. It follows MOVED and ASK (resharding, failover) like
// go-redis does for the commands (the whole write is sent again: every
// write of this package is idempotent). The announcement alone follows an
// ASK (its stream's key is migrating with its slot); after a MOVED, or
// when the map that named its stream is older than streamMapStaleAge once
// the answer is in, it asks the master it wrote to for that master's
// slots and announces again on the stream they name (the master holding a
// key always knows its own slots; another node, or an old map, may not).
// It returns an error wrapping
// ErrNotReplicated when fewer than s.waitReplicas acknowledged. An error
// of the announcement says so ("announcing on the stream ...").
func (s *Store) writeOn(ctx context.Context, w pipeWrite) error {
	node, err := s.master(ctx, w.key)
	if err != nil {
		return err
	}
	asking := false
	keyDone := len(w.cmds) == 0
	var (
		stream  string
		mapRead time.Time // when the map that named stream was read
		viaAsk  bool      // the announcement follows an ASK
	)
	for attempt := 0; ; attempt++ {
		var wire []redis.Cmder
		if asking {
			wire = append(wire, redis.NewStatusCmd(ctx, "asking"))
		}
		var queued []*redis.StatusCmd
		var exec *redis.SliceCmd
		switch {
		case keyDone:
		case w.tx:
			wire = append(wire, redis.NewStatusCmd(ctx, "multi"))
			for _, c := range w.cmds {
				q := redis.NewStatusCmd(ctx, c.Args()...)
				queued = append(queued, q)
				wire = append(wire, q)
			}
			exec = redis.NewSliceCmd(ctx, "exec")
			wire = append(wire, exec)
		default:
			wire = append(wire, w.cmds...)
		}
		var xadd *redis.StringCmd
		if w.jti != "" {
			if stream == "" {
				if stream, mapRead, err = s.streams.streamFor(ctx, w.key); err != nil {
					return fmt.Errorf("announcing on the stream: %w", err)
				}
			}
			xadd = s.announceCmd(ctx, stream, w.jti, w.ms)
			wire = append(wire, xadd)
		}
		var wait *redis.IntCmd
		if s.waitReplicas > 0 {
			wait = redis.NewIntCmd(ctx, "wait", s.waitReplicas, s.waitMS)
			wire = append(wire, wait)
		}

		pipe := node.Pipeline()
		for _, c := range wire {
			_ = pipe.Process(ctx, c)
		}
		_, _ = pipe.Exec(ctx)

		if !keyDone {
			// A redirection is answered to the first keyed command (and,
			// in a transaction, makes EXEC abort): follow it with the
			// whole write.
			var first []redis.Cmder
			if w.tx {
				for _, q := range queued {
					first = append(first, q)
				}
				// All queued, then the slot moved before EXEC: EXEC
				// answers the redirection itself.
				first = append(first, exec)
			} else {
				first = w.cmds
			}
			if addr, ask, ok := redirection(first); ok && attempt < maxRedirects {
				if node, err = s.nodeAt(ctx, addr); err != nil {
					return err
				}
				asking, stream, viaAsk = ask, "", false
				if s.streams != nil {
					// The map of streams is as stale as the client's.
					if _, err := s.streams.read(ctx, time.Now()); err != nil {
						return err
					}
				}
				continue
			}
			if w.tx {
				if err := execResults(exec, queued, w.cmds); err != nil {
					return err
				}
			} else {
				// As Process would: the first error, redis.Nil included (a
				// SET NX that lost wrote nothing, so there is nothing to
				// wait for).
				for _, c := range w.cmds {
					if err := c.Err(); err != nil {
						return err
					}
				}
			}
			keyDone = true
		}
		// Whether the announcement is on the stream of the master holding
		// the key, as that master sees its slots (verify), or is to follow
		// an ASK (ask).
		var verify bool
		var ask string
		if xadd != nil {
			addr, isAsk, redirected := redirection([]redis.Cmder{xadd})
			switch {
			case redirected && attempt >= maxRedirects:
				return s.announceErr(stream, xadd.Err())
			case redirected && isAsk:
				// The stream's slot is migrating and its key has left:
				// it is still this master's stream until the slot has
				// moved, and a watch notices the move after this.
				ask = addr
			case redirected:
				verify = true
			case xadd.Err() != nil:
				return s.announceErr(stream, xadd.Err())
			case !viaAsk && time.Since(mapRead) > streamMapStaleAge:
				// The map that named the stream is older than a watch
				// waits after a resharding (topologyGrace) before it
				// trusts the new set of streams, less a margin: a
				// request delayed on its way, or a map kept because
				// CLUSTER SLOTS failed. The stream of this master may
				// have changed meanwhile without any error (the old
				// one's slot is still here); ask the master.
				verify = true
			}
		}
		if wait != nil {
			// Covers whatever this pipeline wrote, the commands' write
			// included when only the announcement is to be sent again.
			n, err := wait.Result()
			if err != nil {
				return fmt.Errorf("wait: %w", err)
			}
			if n < int64(s.waitReplicas) {
				return fmt.Errorf("%w: %d of %d replicas acknowledged within %d ms", ErrNotReplicated, n, s.waitReplicas, s.waitMS)
			}
		}
		switch {
		case ask != "":
			if node, err = s.nodeAt(ctx, ask); err != nil {
				return s.announceErr(stream, err)
			}
			asking, viaAsk = true, true
			continue
		case !verify:
			return nil
		}
		// The stream's slot is not on this master (MOVED), or the map that
		// named it is old. An announcement belongs on the stream of the
		// master holding the key, which that master names best: ask it
		// (never follow a MOVED to another master's slot, where the stream
		// may be nobody's). Announce again where it says, if elsewhere.
		m, err := s.streams.readFrom(ctx, node)
		if err != nil {
			return s.announceErr(stream, err)
		}
		r := m.rangeOf(keySlot(w.key))
		if r.stream == "" {
			return s.announceErr(stream, fmt.Errorf("no master serves slot %d", keySlot(w.key)))
		}
		if r.stream == stream && r.master == node.Options().Addr && xadd.Err() == nil {
			return nil // it was this master's stream
		}
		if attempt >= maxRedirects {
			return s.announceErr(stream, fmt.Errorf("the stream of the key's master kept moving (last %s on %s)", r.stream, r.master))
		}
		if r.master != node.Options().Addr {
			// The key's slot moved on since its write: its new master
			// announces it.
			if node, err = s.nodeAt(ctx, r.master); err != nil {
				return s.announceErr(stream, err)
			}
		}
		stream, mapRead, asking, viaAsk = r.stream, m.read, false, false
	}
}

// execResults copies the replies of a hand-made MULTI/EXEC into cmds, as a
// TxPipeline would have set them, and returns the transaction's error.
func execResults(exec *redis.SliceCmd, queued []*redis.StatusCmd, cmds []redis.Cmder) error {
	for _, q := range queued {
		if err := q.Err(); err != nil {
			return err
		}
	}
	vals, err := exec.Result()
	if err != nil {
		return err
	}
	if len(vals) != len(cmds) {
		return fmt.Errorf("EXEC answered %d replies for %d commands", len(vals), len(cmds))
	}
	for i, v := range vals {
		if err, ok := v.(error); ok {
			cmds[i].SetErr(err)
			continue
		}
		switch c := cmds[i].(type) {
		case *redis.IntCmd:
			n, ok := v.(int64)
			if !ok {
				return fmt.Errorf("%s answered %T in EXEC, want an integer", c.Name(), v)
			}
			c.SetVal(n)
		case *redis.StatusCmd:
			if v == nil {
				c.SetErr(redis.Nil)
			} else if str, ok := v.(string); ok {
				c.SetVal(str)
			} else {
				return fmt.Errorf("%s answered %T in EXEC, want a status", c.Name(), v)
			}
		case *redis.StringCmd:
			if v == nil {
				c.SetErr(redis.Nil)
			} else if str, ok := v.(string); ok {
				c.SetVal(str)
			} else {
				return fmt.Errorf("%s answered %T in EXEC, want a string", c.Name(), v)
			}
		case *redis.Cmd:
			c.SetVal(v)
		default:
			return fmt.Errorf("internal error: no EXEC decoding for %T", c)
		}
	}
	return nil
}

// redirection returns the target of the first MOVED or ASK among the
// errors of cmds.
func redirection(cmds []redis.Cmder) (addr string, ask, ok bool) {
	for _, c := range cmds {
		var rerr redis.Error
		if !errors.As(c.Err(), &rerr) {
			continue
		}
		f := strings.Fields(rerr.Error())
		if len(f) == 3 && (f[0] == "MOVED" || f[0] == "ASK") {
			return f[2], f[0] == "ASK", true
		}
	}
	return "", false, false
}

// nodeAt returns the client of the cluster node at addr, after reloading
// the client's view of the cluster (a MOVED means that view is stale).
func (s *Store) nodeAt(ctx context.Context, addr string) (*redis.Client, error) {
	cluster, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return nil, fmt.Errorf("redirected to %s by a server that is not in a cluster", addr)
	}
	// ForEachShard reloads the slot map before it walks the nodes, so
	// this also refreshes the routing of every later call.
	var found *redis.Client
	var seen = make(chan *redis.Client, 1)
	err := cluster.ForEachShard(ctx, func(_ context.Context, c *redis.Client) error {
		if c.Options().Addr == addr {
			select {
			case seen <- c:
			default:
			}
		}
		return nil
	})
	select {
	case found = <-seen:
	default:
	}
	if found == nil {
		if err == nil {
			err = errors.New("not among the cluster's nodes")
		}
		return nil, fmt.Errorf("redirected to %s: %w", addr, err)
	}
	return found, nil
}

// noteFailure asks a Cluster client to reload its slot map when err may
// mean that the map is stale: a master that died sends no MOVED, so
// go-redis, left to itself, keeps sending its slots' commands to the dead
// address until its next periodic reload (a minute by default). Calls in
// flight to the dead master fail only once the client's retries end
// (about two seconds with go-redis's defaults), so one reload per failure
// could come that late after the promotion; instead, while failures keep
// coming, the map is reloaded every reloadEvery, until reloadFor has
// passed without one. Each reload is one CLUSTER SLOTS, run in the
// background by go-redis, which spaces reloads at least 200 ms apart.
func (s *Store) noteFailure(err error) {
	if err == nil || !topologyMayHaveChanged(err) {
		return
	}
	cluster, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return
	}
	s.reload.lastFailure.Store(time.Now().UnixNano())
	cluster.ReloadState(context.Background())
	if s.streams != nil {
		s.streams.invalidate()
	}
	if s.reload.running.CompareAndSwap(false, true) {
		go s.reloadWhileFailing(cluster)
	}
}

const (
	reloadEvery = 200 * time.Millisecond
	reloadFor   = 5 * time.Second
)

// reloadState is the state of the slot map reloads of one Store.
type reloadState struct {
	lastFailure atomic.Int64 // unix ns of the last failure noted
	running     atomic.Bool  // reloadWhileFailing runs
}

func (s *Store) reloadWhileFailing(cluster *redis.ClusterClient) {
	t := time.NewTicker(reloadEvery)
	defer t.Stop()
	for range t.C {
		if time.Since(time.Unix(0, s.reload.lastFailure.Load())) > reloadFor {
			s.reload.running.Store(false)
			// A failure noted between the check and the Store above
			// found running set and started nothing: go on for it.
			if time.Since(time.Unix(0, s.reload.lastFailure.Load())) > reloadFor ||
				!s.reload.running.CompareAndSwap(false, true) {
				return
			}
		}
		cluster.ReloadState(context.Background())
	}
}

// topologyMayHaveChanged reports whether err is a failure the cluster's
// slot map can explain: no answer (connection refused or reset, a timeout),
// or a reply saying that this node no longer serves the slot or that the
// cluster is failing over.
func topologyMayHaveChanged(err error) bool {
	if errors.Is(err, redis.Nil) || errors.Is(err, ErrNotReplicated) || errors.Is(err, context.Canceled) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"MOVED ", "ASK ", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN", "LOADING"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	// Anything else that is not a reply: a refused or broken connection,
	// a timeout, a pool that could not dial.
	return true
}
