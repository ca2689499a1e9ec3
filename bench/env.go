package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// memcachedMemoryMB is the memory given to the memcached the command
// starts: room for a million revocations and the comparison's, with no
// eviction.
const memcachedMemoryMB = "1024"

// env is what the sections measure on: the servers and their clients, and
// what to say about them in the header.
type env struct {
	cfg   config
	runID string // in every key, so that runs against a shared server never mix

	redis         *redis.Client        // nil: no standalone Redis
	redisInfo     string               // "redis 7.0.15 (started by bench)"
	cluster       *redis.ClusterClient // nil: no Cluster
	clusterInfo   string
	memcache      *memcache.Client // nil: no memcached
	memcacheAddr  string
	memcacheInfo  string
	memcacheBytes int64 // memcached's memory limit (limit_maxbytes)

	skipped []string // why rows are missing
	closers []func() error
}

// startEnv starts (or dials, when the user gave addresses) every server the
// comparison uses. A server whose binary is missing is skipped with a note;
// any other failure is an error. The caller must call close, even after an
// error.
func startEnv(ctx context.Context, cfg config, runID string, log *progress) (*env, error) {
	e := &env{cfg: cfg, runID: runID}

	// Standalone Redis.
	switch {
	case !cfg.wantsAny("redisstore", "cached → redisstore", "propagation"):
	case cfg.redisAddr != "":
		e.redis = newRedisClient(cfg.redisAddr)
		e.closers = append(e.closers, e.redis.Close)
		e.redisInfo = "yours at " + cfg.redisAddr
	default:
		log.printf("starting redis-server")
		srv, err := testserver.StartRedis(ctx)
		if errors.Is(err, testserver.ErrNotInstalled) {
			e.skipped = append(e.skipped, "redisstore: "+err.Error()+"; or pass -redis-addr")
			break
		}
		if err != nil {
			return e, err
		}
		e.closers = append(e.closers, srv.Close)
		e.redis = newRedisClient(srv.Addr())
		e.closers = append(e.closers, e.redis.Close)
		log.printf("redis-server on %s, pid %d", srv.Addr(), srv.PID())
		e.redisInfo = "started by bench on loopback"
	}
	if e.redis != nil {
		v, err := redisVersion(ctx, e.redis)
		if err != nil {
			return e, fmt.Errorf("redis: %w", err)
		}
		e.redisInfo = "redis " + v + " (" + e.redisInfo + ")"
	}

	// Redis Cluster.
	switch {
	case !cfg.wantsAny("redisstore (cluster)", "cached → redisstore (cluster)", "propagation"):
	case len(cfg.clusterAddrs) > 0:
		e.cluster = newClusterClient(cfg.clusterAddrs)
		e.closers = append(e.closers, e.cluster.Close)
		e.clusterInfo = "yours at " + strings.Join(cfg.clusterAddrs, ",")
	case cfg.noCluster:
		e.skipped = append(e.skipped, "redisstore (cluster): skipped by -no-cluster")
	default:
		log.printf("starting a 3-master redis cluster (about 3 s)")
		c, err := testserver.StartRedisCluster(ctx, 3)
		if c != nil {
			e.closers = append(e.closers, c.Close)
		}
		if errors.Is(err, testserver.ErrNotInstalled) {
			e.skipped = append(e.skipped, "redisstore (cluster): "+err.Error()+"; or pass -redis-cluster-addrs")
			break
		}
		if err != nil {
			return e, err
		}
		e.cluster = newClusterClient(c.Addrs())
		e.closers = append(e.closers, e.cluster.Close)
		for _, n := range c.Nodes {
			log.printf("cluster node on %s, pid %d", n.Addr(), n.PID())
		}
		e.clusterInfo = "3 masters started by bench on loopback"
	}
	if e.cluster != nil {
		v, err := redisVersion(ctx, e.cluster)
		if err != nil {
			return e, fmt.Errorf("redis cluster: %w", err)
		}
		e.clusterInfo = "redis " + v + " cluster (" + e.clusterInfo + ")"
	}

	// memcached.
	switch {
	case !cfg.wantsAny("memcachestore", "cached → memcachestore"):
	case cfg.memcachedAddr != "":
		e.memcacheAddr = cfg.memcachedAddr
		e.memcacheInfo = "yours at " + cfg.memcachedAddr
	default:
		log.printf("starting memcached")
		srv, err := testserver.StartMemcached(ctx, "-m", memcachedMemoryMB)
		if errors.Is(err, testserver.ErrNotInstalled) {
			e.skipped = append(e.skipped, "memcachestore: "+err.Error()+"; or pass -memcached-addr")
			break
		}
		if err != nil {
			return e, err
		}
		e.closers = append(e.closers, srv.Close)
		e.memcacheAddr = srv.Addr()
		log.printf("memcached on %s, pid %d", srv.Addr(), srv.PID())
		e.memcacheInfo = "started by bench on loopback, -m " + memcachedMemoryMB
	}
	if e.memcacheAddr != "" {
		stats, err := memcachedStats(ctx, e.memcacheAddr)
		if err != nil {
			return e, fmt.Errorf("memcached: %w", err)
		}
		fmt.Sscan(stats["limit_maxbytes"], &e.memcacheBytes)
		e.memcacheInfo = "memcached " + stats["version"] + " (" + e.memcacheInfo + ")"
		e.memcache = newMemcacheClient(e.memcacheAddr, cfg.parallelism())
	}
	return e, nil
}

// close stops what startEnv started, in reverse order: clients, then the
// servers, by the PID testserver started them with.
func (e *env) close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// prefix returns the key prefix of one row: bench keys are easy to find and
// never meet another run's. It holds no braces, so on Cluster the keys
// spread over every slot.
func (e *env) prefix(row string) string {
	return "blocklist-bench:" + e.runID + ":" + row + ":"
}

// cleanRedis deletes the keys this run left in a Redis the user owns, so
// that a run against a shared server leaves nothing behind but expiring
// memcached entries. Servers the command started are simply stopped.
func (e *env) cleanRedis(ctx context.Context) error {
	pattern := "blocklist-bench:" + e.runID + ":*"
	clean := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == 1000 {
				if err := c.Unlink(ctx, batch...).Err(); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(batch) > 0 {
			return c.Unlink(ctx, batch...).Err()
		}
		return nil
	}
	var errs []error
	if e.redis != nil && e.cfg.redisAddr != "" {
		errs = append(errs, clean(ctx, e.redis))
	}
	if e.cluster != nil && len(e.cfg.clusterAddrs) > 0 {
		// Keys of one slot are unlinked one by one: a batch would cross slots.
		errs = append(errs, e.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				if err := c.Unlink(ctx, iter.Val()).Err(); err != nil {
					return err
				}
			}
			return iter.Err()
		}))
	}
	return errors.Join(errs...)
}

// redisVersion returns redis_version from INFO server.
func redisVersion(ctx context.Context, c redis.UniversalClient) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "unknown", nil
}

// memcachedStats returns the answer of memcached's stats command, which
// gomemcache does not send: "version" and "limit_maxbytes" among others.
func memcachedStats(ctx context.Context, addr string) (map[string]string, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	stats := map[string]string{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "END" {
			return stats, nil
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			stats[f[1]] = f[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("stats: connection closed before END")
}

// machine describes where the numbers come from: CPU model (from
// /proc/cpuinfo where there is one), cores, OS, Go.
func machine() string {
	model := runtime.GOARCH
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s/%s, %s",
		model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
