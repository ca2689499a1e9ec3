package testserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
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

// Cluster is a Redis Cluster of masters without replicas, each node a
// Server started by this package.
type Cluster struct {
	// Nodes are the masters, in the order their slots were assigned.
	// A node may be Killed and Restarted; it keeps its nodes.conf.
	Nodes []*Server
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
// cluster mode without replicas, joins them with
// `redis-cli --cluster create`, and returns once every node reports
// cluster_state:ok with all 16384 slots assigned and every node known.
// Nodes have no persistence. The caller must Close the cluster.
func StartRedisCluster(ctx context.Context, masters int) (*Cluster, error) {
	if masters < 3 {
		return nil, fmt.Errorf("testserver: a redis cluster needs at least 3 masters, got %d", masters)
	}
	cli, err := lookPath("redis-cli", "redis-tools")
	if err != nil {
		return nil, err
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
	c := &Cluster{Nodes: make([]*Server, masters)}
	errs := make([]error, masters)
	var wg sync.WaitGroup
	for i := range masters {
		wg.Go(func() { c.Nodes[i], errs[i] = start(ctx, sp, extra) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}

	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("testserver: redis-cli --cluster create: %w; output:\n%s", err, out)
	}
	if err := c.waitOK(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// waitOK polls CLUSTER INFO on every node until each sees the whole
// cluster serving all slots.
func (c *Cluster) waitOK(ctx context.Context) error {
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": "16384",
		"cluster_known_nodes":    strconv.Itoa(len(c.Nodes)),
	}
	for _, n := range c.Nodes {
		for {
			info, err := redisDo(ctx, n.Addr(), "CLUSTER INFO")
			if err == nil {
				err = checkFields(info, want)
			}
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("testserver: redis cluster node %s not ready: %v: %w", n.Addr(), err, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
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
