package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jwtblocklist/blocklist/internal/testserver"
	"github.com/jwtblocklist/blocklist/redisstore"
)

const (
	// replicationRevocations is how many Revokes each store of the
	// replication section times, in quick mode too: it is quick.
	replicationRevocations = 2000
	// replicationWait is the WithWait of the measured store.
	replicationWaitReplicas, replicationWaitTimeout = 1, 100 * time.Millisecond
)

// replicationHeader names the columns of the replication table.
var replicationHeader = []string{"store", "Revokes", "p50", "p99", "max", "p50 vs plain", "p99 vs plain"}

// replication measures what WithWait costs a Revoke on a Redis Cluster
// with one replica per master: the same client, two stores taking turns
// (A B B A ...) in blocks of 50 fresh ids.
func (r *runner) replication(ctx context.Context) (section, error) {
	sec := section{title: "Replication: Revoke waiting for a replica (Cluster)"}
	sec.intro = append(sec.intro, fmt.Sprintf("A Redis Cluster of 3 masters and 3 replicas started by bench on loopback "+
		"(appendonly yes, appendfsync always on every node), one go-redis ClusterClient, two `redisstore` Stores over it: "+
		"plain, and `WithWait(%d, %s)`, which sends WAIT after each write on the write's own connection. "+
		"Each revokes %s fresh ids, one at a time, the two taking turns in blocks of 50 (A B B A ...).",
		replicationWaitReplicas, fmtDur(replicationWaitTimeout), fmtCount(replicationRevocations)))
	sec.table = table{header: replicationHeader}

	r.log.printf("replication: starting a 3+3 redis cluster (about 4 s)")
	c, err := testserver.StartRedisClusterWithReplicas(ctx, 3, 1)
	if err != nil {
		return sec, err
	}
	defer c.Close()
	client := newClusterClient(c.Addrs())
	defer client.Close()

	stores := []*redisstore.Store{
		redisstore.New(client, redisstore.WithPrefix(r.env.prefix("replication-plain"))),
		redisstore.New(client, redisstore.WithPrefix(r.env.prefix("replication-wait")),
			redisstore.WithWait(replicationWaitReplicas, replicationWaitTimeout)),
	}
	lat := make([][]time.Duration, len(stores))
	exp := time.Now().Add(30 * time.Minute)
	const block = 50
	n := 0
	for round := 0; n < replicationRevocations; round++ {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			for k := range block {
				id := "id-" + strconv.Itoa(n+k)
				start := time.Now()
				if err := stores[i].Revoke(ctx, id, exp); err != nil {
					return sec, fmt.Errorf("revoke: %w", err)
				}
				lat[i] = append(lat[i], time.Since(start))
			}
		}
		n += block
	}
	if ctx.Err() != nil {
		return sec, ctx.Err()
	}
	if len(lat[0]) == 0 {
		return sec, errors.New("nothing measured")
	}
	q := func(l []time.Duration, p int) time.Duration { return l[(len(l)-1)*p/100] }
	for i := range lat {
		slices.Sort(lat[i])
	}
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("×%.2f", float64(a)/float64(b)) }
	for i, name := range []string{"plain", fmt.Sprintf("WithWait(%d, %s)", replicationWaitReplicas, fmtDur(replicationWaitTimeout))} {
		l := lat[i]
		sec.table.add(name, fmtCount(len(l)), fmtDur(q(l, 50)), fmtDur(q(l, 99)), fmtDur(l[len(l)-1]),
			ratio(q(l, 50), q(lat[0], 50)), ratio(q(l, 99), q(lat[0], 99)))
	}
	sec.notes = append(sec.notes, "Every WithWait Revoke returned nil: each was acknowledged by the replica of its "+
		"master within the timeout. The plain Revoke is one round trip to the key's master (the MULTI/EXEC, then the "+
		"announcement's XADD on that master's stream, pipelined on the same connection); WithWait adds one WAIT after both.")
	return sec, nil
}
