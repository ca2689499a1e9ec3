package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// keySlot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of the part inside its first {...} when that part is not empty,
// modulo 16384 (the Redis Cluster specification, "Hash tags").
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % clusterSlots
}

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotTags maps each hash slot n to T(n), the smallest decimal integer
// whose CRC16 modulo 16384 is n: the hash tag of the stream key of a
// master whose lowest slot is n. Every slot has one below 110,000, so a
// tag has at most six digits. Computed once, on first use, and never
// changed.
var slotTags = sync.OnceValue(func() *[clusterSlots]uint32 {
	var tags [clusterSlots]uint32
	var found [clusterSlots]bool
	for n, left := 0, clusterSlots; left > 0; n++ {
		slot := crc16(strconv.Itoa(n)) % clusterSlots
		if !found[slot] {
			found[slot], tags[slot] = true, uint32(n)
			left--
		}
	}
	return &tags
})

// clusterStreamKey returns the key of the announcement stream of a master
// whose lowest slot is slot: "{T(slot)}" followed by the prefix. The hash
// tag puts the stream on slot, hence on that master; putting it first
// keeps every stream key out of the prefix's key space (no revocation key
// starts with "{", see New), so no id's key can be a stream.
func clusterStreamKey(prefix string, slot int) string {
	return "{" + strconv.FormatUint(uint64(slotTags()[slot]), 10) + "}" + prefix
}

// How old a Store's map of the cluster's streams may be. A resharding that
// changes which slot is a master's lowest changes that master's stream
// key, and an announcement on the previous key, if that is still on the
// master, succeeds unseen. So a write uses a map read (CLUSTER SLOTS sent)
// at most streamMapStaleAge before it: past streamMapMaxAge the map is
// read again in the background while writes go on with it, past
// streamMapStaleAge (a writer idle that long) the write reads it first,
// and a write whose answer comes more than streamMapStaleAge after the map
// was read asks its master which stream is its own (see writeOn). A watch
// waits topologyGrace, longer than streamMapStaleAge, between noticing a
// new set of streams and reading them (see watchCluster), so every write
// whose announcement lands after its Synced used a map read after the
// resharding, or was checked against its master's own slots.
const (
	streamMapMaxAge   = time.Second
	streamMapStaleAge = 1500 * time.Millisecond
)

// slotStream is a range of slots served by one master, and the key of that
// master's announcement stream.
type slotStream struct {
	start, end int // inclusive
	stream     string
	master     string // the address of the master serving the range
}

// streamMap is one reading of the cluster's slot map, as stream keys.
type streamMap struct {
	read   time.Time
	ranges []slotStream // sorted by start
	keys   []string     // every stream key, sorted, each once
}

// streamOf returns the stream key of the master serving slot, or "" when
// no master serves it.
func (m *streamMap) streamOf(slot int) string {
	return m.rangeOf(slot).stream
}

// rangeOf returns the range of slots holding slot, or the zero slotStream
// when no master serves it.
func (m *streamMap) rangeOf(slot int) slotStream {
	i, found := slices.BinarySearchFunc(m.ranges, slot, func(r slotStream, slot int) int { return r.start - slot })
	if !found {
		i--
	}
	if i >= 0 && slot <= m.ranges[i].end {
		return m.ranges[i]
	}
	return slotStream{}
}

// newStreamMap turns CLUSTER SLOTS into stream keys: each master's stream
// is clusterStreamKey of the lowest slot it serves.
func newStreamMap(prefix string, slots []redis.ClusterSlot) (*streamMap, error) {
	lowest := make(map[string]int) // master (node id, or address) -> lowest slot
	master := func(r redis.ClusterSlot) string {
		if r.Nodes[0].ID != "" {
			return r.Nodes[0].ID
		}
		return r.Nodes[0].Addr
	}
	for _, r := range slots {
		if len(r.Nodes) == 0 || r.Start < 0 || r.End >= clusterSlots || r.Start > r.End {
			return nil, fmt.Errorf("CLUSTER SLOTS answered a malformed range %d-%d with %d nodes", r.Start, r.End, len(r.Nodes))
		}
		if low, ok := lowest[master(r)]; !ok || r.Start < low {
			lowest[master(r)] = r.Start
		}
	}
	m := new(streamMap)
	for _, r := range slots {
		key := clusterStreamKey(prefix, lowest[master(r)])
		m.ranges = append(m.ranges, slotStream{start: r.Start, end: r.End, stream: key, master: r.Nodes[0].Addr})
		m.keys = append(m.keys, key)
	}
	slices.SortFunc(m.ranges, func(a, b slotStream) int { return a.start - b.start })
	slices.Sort(m.keys)
	m.keys = slices.Compact(m.keys)
	if len(m.keys) == 0 {
		return nil, fmt.Errorf("CLUSTER SLOTS answered no slots")
	}
	return m, nil
}

// clusterStreams is a Store's view of which stream each slot's
// announcements go to on Cluster.
type clusterStreams struct {
	client *redis.ClusterClient
	prefix string
	cur    atomic.Pointer[streamMap]
	turn   chan struct{} // one reading at a time: holds a value while one runs
	stale  atomic.Bool   // a reading in the background is due or running
}

func newClusterStreams(client *redis.ClusterClient, prefix string) *clusterStreams {
	return &clusterStreams{client: client, prefix: prefix, turn: make(chan struct{}, 1)}
}

// read reads CLUSTER SLOTS within ctx and makes it the current map, unless
// another reading finished while this one waited for its turn after since.
// Waiting for the turn ends with ctx too. A reading a write cannot do
// without (no map yet, a slot the map does not serve, a MOVED) takes the
// write's ctx: like the write's own commands, it is bounded by the
// caller and the client's timeouts, not by the watch's silence bound.
func (cs *clusterStreams) read(ctx context.Context, since time.Time) (*streamMap, error) {
	select {
	case cs.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("reading the stream of each master: %w", ctx.Err())
	}
	defer func() { <-cs.turn }()
	if m := cs.cur.Load(); m != nil && m.read.After(since) {
		return m, nil
	}
	sent := time.Now() // what the answer describes is no older than this
	slots, err := cs.slots(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the stream of each master: CLUSTER SLOTS: %w", err)
	}
	m, err := newStreamMap(cs.prefix, slots)
	if err != nil {
		return nil, fmt.Errorf("reading the stream of each master: %w", err)
	}
	m.read = sent
	cs.cur.Store(m)
	return m, nil
}

// slots reads the slot map: the client's ClusterSlots option when it has
// one (standalone servers the client shards by that map, which answer no
// CLUSTER SLOTS), else CLUSTER SLOTS on node, or on a node of the
// client's choice when node is nil.
func (cs *clusterStreams) slots(ctx context.Context, node *redis.Client) ([]redis.ClusterSlot, error) {
	if manual := cs.client.Options().ClusterSlots; manual != nil {
		return manual(ctx)
	}
	if node != nil {
		return node.ClusterSlots(ctx).Result()
	}
	return cs.client.ClusterSlots(ctx).Result()
}

// readWithin is read giving up after WatchSilenceBound: for the watch,
// which reports a silent server within that bound, and for readings a
// write can do without (a refresh that falls back on the map it has).
func (cs *clusterStreams) readWithin(ctx context.Context, since time.Time) (*streamMap, error) {
	rctx, cancel := context.WithTimeout(ctx, WatchSilenceBound)
	defer cancel()
	return cs.read(rctx, since)
}

// readFrom reads CLUSTER SLOTS from node, the master a write went to:
// the master whose stream an announcement must be on always knows its
// own slots, whatever the other nodes have learnt yet. The reading
// becomes the current map unless a newer one is. It takes the write's
// ctx, as read does.
func (cs *clusterStreams) readFrom(ctx context.Context, node *redis.Client) (*streamMap, error) {
	sent := time.Now()
	slots, err := cs.slots(ctx, node)
	if err != nil {
		return nil, fmt.Errorf("reading the stream of each master: CLUSTER SLOTS on %s: %w", node.Options().Addr, err)
	}
	m, err := newStreamMap(cs.prefix, slots)
	if err != nil {
		return nil, fmt.Errorf("reading the stream of each master: %s: %w", node.Options().Addr, err)
	}
	m.read = sent
	for {
		cur := cs.cur.Load()
		if cur != nil && !cur.read.Before(sent) || cs.cur.CompareAndSwap(cur, m) {
			return m, nil
		}
	}
}

// current returns the map, reading it first when there is none or it is
// older than streamMapStaleAge, and starting a reading in the background
// when it is older than streamMapMaxAge.
func (cs *clusterStreams) current(ctx context.Context) (*streamMap, error) {
	m := cs.cur.Load()
	if m == nil {
		return cs.read(ctx, time.Time{})
	}
	if time.Since(m.read) > streamMapStaleAge {
		if fresh, err := cs.readWithin(ctx, m.read); err == nil {
			return fresh, nil
		}
		// CLUSTER SLOTS failed or was slow (the node asked may be down):
		// announcing on the map we have beats failing the write; writeOn
		// asks the key's master for its own slots after the write, as it
		// does for any map older than streamMapStaleAge.
		return m, nil
	}
	if time.Since(m.read) > streamMapMaxAge && cs.stale.CompareAndSwap(false, true) {
		go func() {
			defer cs.stale.Store(false)
			_, _ = cs.readWithin(context.Background(), m.read)
		}()
	}
	return m, nil
}

// streamFor returns the stream of the master serving key's slot, and when
// the map that says so was read (CLUSTER SLOTS sent).
func (cs *clusterStreams) streamFor(ctx context.Context, key string) (string, time.Time, error) {
	m, err := cs.current(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	slot := keySlot(key)
	if st := m.streamOf(slot); st != "" {
		return st, m.read, nil
	}
	// Not served in the map we have: it may be stale.
	if m, err = cs.read(ctx, m.read); err != nil {
		return "", time.Time{}, err
	}
	if st := m.streamOf(slot); st != "" {
		return st, m.read, nil
	}
	return "", time.Time{}, fmt.Errorf("no master serves slot %d", slot)
}

// invalidate marks the map as due for a reading: the next write reads it
// in the background (a failure alone does not change the stream keys: a
// failover keeps each master's slots).
func (cs *clusterStreams) invalidate() {
	due := time.Now().Add(-streamMapMaxAge - time.Millisecond)
	if m := cs.cur.Load(); m != nil && m.read.After(due) {
		old := *m
		old.read = due
		cs.cur.CompareAndSwap(m, &old)
	}
}

// topology is what a Cluster watch compares between readings of the
// cluster: the set of stream keys, and the config epoch of each master.
// Moving a slot bumps the epoch of the master that takes it (CLUSTER
// SETSLOT ... NODE on the importing node), so a slot moved away and back
// between two readings, which leaves the set of keys as it was, still
// shows; a failover does not count, since the promoted replica is another
// node.
type topology struct {
	keys   []string
	epochs map[string]int64 // master node id -> config epoch; nil when unknown
}

// moved reports whether next shows a resharding since t: another set of
// streams, or a master of both with a later config epoch.
func (t *topology) moved(next *topology) bool {
	if !slices.Equal(t.keys, next.keys) {
		return true
	}
	for id, e := range next.epochs {
		if old, ok := t.epochs[id]; ok && e > old {
			return true
		}
	}
	return false
}

// readTopology reads the cluster's topology from CLUSTER NODES, on a node
// of the client's choice, within WatchSilenceBound; with the client's
// ClusterSlots option, from that (no epochs).
func (cs *clusterStreams) readTopology(ctx context.Context) (*topology, error) {
	rctx, cancel := context.WithTimeout(ctx, WatchSilenceBound)
	defer cancel()
	if cs.client.Options().ClusterSlots != nil {
		slots, err := cs.slots(rctx, nil)
		if err != nil {
			return nil, fmt.Errorf("reading the stream of each master: %w", err)
		}
		m, err := newStreamMap(cs.prefix, slots)
		if err != nil {
			return nil, fmt.Errorf("reading the stream of each master: %w", err)
		}
		return &topology{keys: m.keys}, nil
	}
	text, err := cs.client.ClusterNodes(rctx).Result()
	if err != nil {
		return nil, fmt.Errorf("reading the stream of each master: CLUSTER NODES: %w", err)
	}
	slots, epochs, err := parseClusterNodes(text)
	if err != nil {
		return nil, fmt.Errorf("reading the stream of each master: CLUSTER NODES: %w", err)
	}
	m, err := newStreamMap(cs.prefix, slots)
	if err != nil {
		return nil, fmt.Errorf("reading the stream of each master: %w", err)
	}
	return &topology{keys: m.keys, epochs: epochs}, nil
}

// parseClusterNodes returns the slot ranges of the masters in a CLUSTER
// NODES answer, as CLUSTER SLOTS would list them (the masters' id and
// address only), and each master's config epoch.
func parseClusterNodes(text string) ([]redis.ClusterSlot, map[string]int64, error) {
	var slots []redis.ClusterSlot
	epochs := make(map[string]int64)
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		if !slices.Contains(strings.Split(f[2], ","), "master") {
			continue
		}
		epoch, err := strconv.ParseInt(f[6], 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("config epoch %q of %s", f[6], f[0])
		}
		addr, _, _ := strings.Cut(f[1], "@")
		node := redis.ClusterNode{ID: f[0], Addr: addr}
		served := false
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being imported or migrated
			}
			a, b, isRange := strings.Cut(r, "-")
			if !isRange {
				b = a
			}
			lo, err1 := strconv.Atoi(a)
			hi, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return nil, nil, fmt.Errorf("slot range %q of %s", r, f[0])
			}
			slots = append(slots, redis.ClusterSlot{Start: lo, End: hi, Nodes: []redis.ClusterNode{node}})
			served = true
		}
		if served {
			epochs[f[0]] = epoch
		}
	}
	return slots, epochs, nil
}
