package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clusterTimeout bounds cluster creation when the caller's context has no
// earlier deadline.
const clusterTimeout = 60 * time.Second

// clusterBusOffset is the distance from a node's port to its cluster bus
// port, fixed by Redis.
const clusterBusOffset = 10000

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// ClusterNodeTimeout is the cluster-node-timeout of the clusters with
// replicas: a master unreachable for this long is marked failing, and its
// replica is promoted a few hundred milliseconds to a second or two after
// the majority agrees. It is Redis's lowest honest setting on a loaded
// machine: lower, a busy node (fsync on every write, parallel tests on two
// cores) misses pings and triggers failovers nobody asked for.
const ClusterNodeTimeout = 1000 * time.Millisecond

// Cluster is a Redis Cluster whose every node is a Server started by this
// package.
type Cluster struct {
	// Nodes are every node: the masters first, in the order their slots
	// were assigned, then the replicas, in the order of their masters.
	// Roles change when a replica is promoted; ask MasterFor and ReplicaOf
	// for the current ones. A node may be Paused, Resumed, Killed and
	// Restarted; it keeps its nodes.conf and its data directory.
	Nodes []*Server
	// Masters is the number of masters the cluster was created with.
	Masters int
}

// Addrs returns the address of every node, for redis.ClusterOptions.Addrs.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Close stops every node and removes their directories. Closing again does
// nothing.
func (c *Cluster) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		if n != nil {
			errs = append(errs, n.Close())
		}
	}
	return errors.Join(errs...)
}

// StartRedisCluster starts masters redis-server nodes (at least 3) in
// cluster mode without replicas and without persistence, joins them, and
// returns once every node reports cluster_state:ok with all 16384 slots
// assigned and every node known. The caller must Close the cluster.
func StartRedisCluster(ctx context.Context, masters int) (*Cluster, error) {
	return startCluster(ctx, masters, 0)
}

// StartRedisClusterWithReplicas starts a cluster of masters (at least 3)
// with replicasPerMaster replicas each, as a production cluster runs:
// every node with "appendonly yes" and "appendfsync always", a
// cluster-node-timeout of ClusterNodeTimeout, and
// "cluster-require-full-coverage no", so that while one master is down the
// other masters keep serving their slots. It returns once every node
// reports cluster_state:ok, knows every other node, and every replica has
// finished its first synchronisation with its master. The caller must Close
// the cluster.
func StartRedisClusterWithReplicas(ctx context.Context, masters, replicasPerMaster int) (*Cluster, error) {
	if replicasPerMaster < 1 {
		return nil, fmt.Errorf("testserver: a redis cluster with replicas needs at least 1 per master, got %d", replicasPerMaster)
	}
	return startCluster(ctx, masters, replicasPerMaster)
}

func startCluster(ctx context.Context, masters, replicasPerMaster int) (*Cluster, error) {
	if masters < 3 {
		return nil, fmt.Errorf("testserver: a redis cluster needs at least 3 masters, got %d", masters)
	}
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()

	sp := redisSpec
	sp.port = freeClusterPort
	extra := []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "2000",
	}
	if replicasPerMaster > 0 {
		extra = []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(ClusterNodeTimeout.Milliseconds(), 10),
			"--cluster-require-full-coverage", "no",
			"--appendonly", "yes",
			"--appendfsync", "always",
			// A replica's first synchronisation starts at once instead
			// of after the default five seconds.
			"--repl-diskless-sync-delay", "0",
		}
	}
	n := masters * (1 + replicasPerMaster)
	c := &Cluster{Nodes: make([]*Server, n), Masters: masters}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { c.Nodes[i], errs[i] = start(ctx, sp, extra) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.join(ctx, replicasPerMaster); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// join does what `redis-cli --cluster create` does, without its
// one-second polls: a distinct config epoch and a contiguous slot range
// per master, one MEET per node, then each replica told its master.
func (c *Cluster) join(ctx context.Context, replicasPerMaster int) error {
	ids := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		id, err := redisDo(ctx, n.Addr(), "CLUSTER MYID")
		if err != nil {
			return fmt.Errorf("testserver: cluster myid on %s: %w", n.Addr(), err)
		}
		ids[i] = id
		// Distinct epochs from the start, so no collision round is needed.
		if _, err := redisDo(ctx, n.Addr(), fmt.Sprintf("CLUSTER SET-CONFIG-EPOCH %d", i+1)); err != nil {
			return fmt.Errorf("testserver: cluster set-config-epoch on %s: %w", n.Addr(), err)
		}
	}
	for i := range c.Masters {
		first, last := i*clusterSlots/c.Masters, (i+1)*clusterSlots/c.Masters-1
		cmd := fmt.Sprintf("CLUSTER ADDSLOTSRANGE %d %d", first, last)
		if _, err := redisDo(ctx, c.Nodes[i].Addr(), cmd); err != nil {
			return fmt.Errorf("testserver: %s on %s: %w", cmd, c.Nodes[i].Addr(), err)
		}
	}
	for _, n := range c.Nodes[1:] {
		cmd := fmt.Sprintf("CLUSTER MEET 127.0.0.1 %d", n.port)
		if _, err := redisDo(ctx, c.Nodes[0].Addr(), cmd); err != nil {
			return fmt.Errorf("testserver: %s: %w", cmd, err)
		}
	}
	if err := c.waitInfo(ctx, map[string]string{"cluster_known_nodes": strconv.Itoa(len(c.Nodes))}); err != nil {
		return err
	}
	for r := range replicasPerMaster {
		for m := range c.Masters {
			replica := c.Nodes[c.Masters*(1+r)+m]
			// A replica must know its master's id before it can follow it;
			// gossip may still be on its way, so retry.
			cmd := "CLUSTER REPLICATE " + ids[m]
			for {
				_, err := redisDo(ctx, replica.Addr(), cmd)
				if err == nil {
					break
				}
				if !strings.Contains(err.Error(), "Unknown node") {
					return fmt.Errorf("testserver: %s on %s: %w", cmd, replica.Addr(), err)
				}
				if err := sleep(ctx, 20*time.Millisecond); err != nil {
					return fmt.Errorf("testserver: %s on %s: %w", cmd, replica.Addr(), err)
				}
			}
		}
	}
	if err := c.waitInfo(ctx, map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(len(c.Nodes)),
		"cluster_size":           strconv.Itoa(c.Masters),
	}); err != nil {
		return err
	}
	return c.waitReplicasSynced(ctx, c.Nodes[c.Masters:])
}

// waitInfo polls CLUSTER INFO on every node until each reports want.
func (c *Cluster) waitInfo(ctx context.Context, want map[string]string) error {
	for _, n := range c.Nodes {
		for {
			info, err := redisDo(ctx, n.Addr(), "CLUSTER INFO")
			if err == nil {
				err = checkFields(info, want)
			}
			if err == nil {
				break
			}
			if sleep(ctx, 20*time.Millisecond) != nil {
				return fmt.Errorf("testserver: redis cluster node %s not ready: %v: %w", n.Addr(), err, ctx.Err())
			}
		}
	}
	return nil
}

// waitReplicasSynced polls INFO replication on each of replicas until its
// link to its master is up and its first synchronisation is done.
func (c *Cluster) waitReplicasSynced(ctx context.Context, replicas []*Server) error {
	want := map[string]string{"role": "slave", "master_link_status": "up", "master_sync_in_progress": "0"}
	for _, n := range replicas {
		for {
			info, err := redisDo(ctx, n.Addr(), "INFO replication")
			if err == nil {
				err = checkFields(info, want)
			}
			if err == nil {
				break
			}
			if sleep(ctx, 20*time.Millisecond) != nil {
				return fmt.Errorf("testserver: redis replica %s not synchronised: %v: %w", n.Addr(), err, ctx.Err())
			}
		}
	}
	return nil
}

// WaitOK returns once every running node that is not paused reports
// cluster_state:ok and every replica among them has its link to its master
// up, as after a failover settles; or with an error when ctx ends first.
func (c *Cluster) WaitOK(ctx context.Context) error {
	for _, n := range c.Nodes {
		if n.PID() == 0 || n.Paused() {
			continue
		}
		for {
			err := func() error {
				info, err := redisDo(ctx, n.Addr(), "CLUSTER INFO")
				if err != nil {
					return err
				}
				if err := checkFields(info, map[string]string{"cluster_state": "ok"}); err != nil {
					return err
				}
				repl, err := redisDo(ctx, n.Addr(), "INFO replication")
				if err != nil {
					return err
				}
				if infoField(repl, "role") == "slave" {
					return checkFields(repl, map[string]string{"master_link_status": "up"})
				}
				return nil
			}()
			if err == nil {
				break
			}
			if sleep(ctx, 20*time.Millisecond) != nil {
				return fmt.Errorf("testserver: redis cluster node %s not ok: %v: %w", n.Addr(), err, ctx.Err())
			}
		}
	}
	return nil
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, master string // master: the id of the node it replicates, or "-"
	port       int
	flags      []string
	slots      [][2]int // inclusive ranges
}

func (n clusterNode) has(flag string) bool {
	for _, f := range n.flags {
		if f == flag {
			return true
		}
	}
	return false
}

// nodesView asks the first running, unpaused node that answers for its view
// of the cluster (CLUSTER NODES).
func (c *Cluster) nodesView(ctx context.Context) ([]clusterNode, error) {
	var errs []error
	for _, s := range c.Nodes {
		if s.PID() == 0 || s.Paused() {
			continue
		}
		text, err := redisDo(ctx, s.Addr(), "CLUSTER NODES")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return parseClusterNodes(text)
	}
	return nil, fmt.Errorf("testserver: no cluster node answered CLUSTER NODES: %w", errors.Join(errs...))
}

func parseClusterNodes(text string) ([]clusterNode, error) {
	var nodes []clusterNode
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		hostPort, _, _ := strings.Cut(f[1], "@")
		_, portStr, err := net.SplitHostPort(hostPort)
		if err != nil {
			return nil, fmt.Errorf("testserver: CLUSTER NODES line %q: %w", line, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("testserver: CLUSTER NODES line %q: %w", line, err)
		}
		n := clusterNode{id: f[0], master: f[3], port: port, flags: strings.Split(f[2], ",")}
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
				return nil, fmt.Errorf("testserver: CLUSTER NODES slot range %q", r)
			}
			n.slots = append(n.slots, [2]int{lo, hi})
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func (c *Cluster) serverOn(port int) *Server {
	for _, s := range c.Nodes {
		if s.port == port {
			return s
		}
	}
	return nil
}

// MasterFor returns the node that, in the view of the first node that
// answers, is the master serving key's hash slot and is not marked failed.
func (c *Cluster) MasterFor(ctx context.Context, key string) (*Server, error) {
	nodes, err := c.nodesView(ctx)
	if err != nil {
		return nil, err
	}
	slot := KeySlot(key)
	for _, n := range nodes {
		if !n.has("master") || n.has("fail") {
			continue
		}
		for _, r := range n.slots {
			if r[0] <= slot && slot <= r[1] {
				if s := c.serverOn(n.port); s != nil {
					return s, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("testserver: no live master serves slot %d of key %q", slot, key)
}

// ReplicaOf returns a replica of master, as seen by the first node that
// answers.
func (c *Cluster) ReplicaOf(ctx context.Context, master *Server) (*Server, error) {
	nodes, err := c.nodesView(ctx)
	if err != nil {
		return nil, err
	}
	var id string
	for _, n := range nodes {
		if n.port == master.port {
			id = n.id
		}
	}
	for _, n := range nodes {
		if id != "" && n.master == id && !n.has("fail") {
			if s := c.serverOn(n.port); s != nil {
				return s, nil
			}
		}
	}
	return nil, fmt.Errorf("testserver: no replica of %s", master.Addr())
}

// KeySlot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of the part inside its first non-empty {...}, modulo 16384.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % clusterSlots
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func checkFields(info string, want map[string]string) error {
	var bad []string
	for k, v := range want {
		if got := infoField(info, k); got != v {
			bad = append(bad, fmt.Sprintf("%s=%q, want %q", k, got, v))
		}
	}
	if bad != nil {
		return errors.New(strings.Join(bad, ", "))
	}
	return nil
}

// freeClusterPort returns a port P such that P and its cluster bus port
// P+10000 were both free a moment ago.
func freeClusterPort() (int, error) {
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testserver: find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port+clusterBusOffset > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+clusterBusOffset)))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("testserver: no free port P with P+10000 also free")
}
