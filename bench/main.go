// Command bench measures every backend of blocklist the same way, each beside
// the raw client it is built on, and prints the comparison as Markdown:
//
//	go run ./bench -quick                  # under a minute
//	go run ./bench -out bench.md -svg bench.svg   # a few minutes
//
// It starts its own redis-server, a 3-master Redis Cluster and memcached on
// free loopback ports (package internal/testserver) when the binaries are
// installed, and stops them by PID when it ends, Ctrl-C included. With
// -redis-addr, -redis-cluster-addrs or -memcached-addr it uses yours instead,
// under keys of its own ("blocklist-bench:<run>:..."), which it deletes from
// Redis at the end; its memcached entries expire within half an hour. A
// server that is neither installed nor given is skipped with a note.
//
// The report has a header naming the machine and the servers, then one
// section per measurement, each a table with what it measured written
// beside it:
//
//   - the comparison: IsRevoked on revoked and unrevoked ids (p50, p99),
//     Revoke (p50, p99), parallel throughput, allocations, and the ratio of
//     each Store to its raw client, with the number of operations behind
//     each figure;
//   - growth: IsRevoked as the blocklist holds 1k, 100k and 1M live entries
//     (-quick stops at 100k);
//   - propagation: how long a revocation made by one instance takes to reach
//     another's cache over Redis (p50, p99 of 1,000), and that a replica
//     answers every check without a call to Redis;
//   - replication: Revoke (p50, p99) on a Redis Cluster of 3 masters and 3
//     replicas it starts for the purpose, plain and with
//     redisstore.WithWait(1, 100ms), taking turns (-no-cluster skips it).
//
// The report opens with a recommendation per use (one process; one
// machine, durable; a fleet), drawn from the run's own figures. Progress
// goes to stderr, the report to stdout and to a file, with a chart beside
// it: -out FILE.md and -svg FILE.svg say where, and without them both go to
// a new temporary folder that the progress names. The chart has a panel
// per question, on log scales: IsRevoked (every backend beside its raw
// client), Revoke (p50 and p99), and how fast a logout reaches another
// instance (propagation). -only memorystore,cluster measures only the rows whose names
// contain one of the words (and starts only the servers they need);
// -bolt-dir puts the bbolt files on the disk whose fsync you want to know.
//
// A new section (for instance how long a revocation takes to reach another
// process's cache) is a method of runner returning a section, listed in
// runner.sections.
//
// The measuring itself is package benchmark (one function any Store can be
// run through); this command adds the servers, the raw baselines, the table
// and the chart. go test -bench . ./bench runs the same workload on the same
// backends as ordinary Go benchmarks.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jwtblocklist/blocklist/internal/measure"
)

// config is what the flags chose.
type config struct {
	quick         bool
	out, svg      string
	redisAddr     string
	clusterAddrs  []string
	memcachedAddr string
	boltDir       string
	noCluster     bool
	growth        bool
	only          []string // rows whose name contains one of these; all when empty

	ops, warmup int           // per phase of the comparison
	minDuration time.Duration // per lookup phase
	maxDuration time.Duration // per phase
	keys        int           // revoked ids cycled through
	lifetime    time.Duration // of every revocation made
	sizes       []int         // growth: live entries
	growthOps   int           // growth: timed lookups per size
}

func (c config) parallelism() int { return runtime.GOMAXPROCS(0) }

// wants reports whether the row named row (or the growth row of that
// backend) is to be measured: -only selects rows by parts of their names.
func (c config) wants(row string) bool {
	if len(c.only) == 0 {
		return true
	}
	for _, w := range c.only {
		if strings.Contains(row, w) {
			return true
		}
	}
	return false
}

// wantsAny reports whether any of rows is to be measured; servers no
// wanted row needs are not started.
func (c config) wantsAny(rows ...string) bool {
	for _, r := range rows {
		if c.wants(r) {
			return true
		}
	}
	return false
}

// measureOpts are the options of every measure.Measure of the comparison.
func (c config) measureOpts() []measure.Option {
	return []measure.Option{
		measure.WithOps(c.ops),
		measure.WithWarmup(c.warmup),
		measure.WithMinDuration(c.minDuration),
		measure.WithMaxDuration(c.maxDuration),
		measure.WithKeys(c.keys),
		measure.WithLifetime(c.lifetime),
		measure.WithParallelism(c.parallelism()),
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	var clusterAddrs string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.quick, "quick", false, "fewer operations and no 1M growth step: under a minute")
	fs.StringVar(&cfg.out, "out", "", "write the Markdown report to `FILE.md` too (default: in a new temporary folder)")
	fs.StringVar(&cfg.svg, "svg", "", "write the chart (lookups, Revoke, propagation) to `FILE.svg` (default: in a new temporary folder)")
	fs.StringVar(&cfg.redisAddr, "redis-addr", "", "use the Redis at `host:port` instead of starting one")
	fs.StringVar(&clusterAddrs, "redis-cluster-addrs", "", "use the Redis Cluster at `host:port,...` instead of starting one")
	fs.StringVar(&cfg.memcachedAddr, "memcached-addr", "", "use the memcached at `host:port` instead of starting one")
	fs.StringVar(&cfg.boltDir, "bolt-dir", "", "put the bbolt files in `DIR` (default: a new temporary directory); its disk sets Revoke's fsync cost")
	fs.BoolVar(&cfg.noCluster, "no-cluster", false, "skip the Redis Cluster rows (starting a cluster takes about 3 s)")
	fs.BoolVar(&cfg.growth, "growth", true, "measure lookups as the blocklist grows")
	var only string
	fs.StringVar(&only, "only", "", "measure only the rows whose name contains one of `WORDS` (comma-separated), e.g. memorystore,cluster")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench [flags]\n\nMeasures every blocklist backend beside its raw client and prints a Markdown report.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if clusterAddrs != "" {
		cfg.clusterAddrs = strings.Split(clusterAddrs, ",")
	}
	if only != "" {
		cfg.only = strings.Split(only, ",")
	}
	cfg.keys = measure.DefaultKeys
	cfg.lifetime = 30 * time.Minute
	if cfg.quick {
		cfg.ops, cfg.warmup, cfg.minDuration, cfg.maxDuration = 2000, 200, 100*time.Millisecond, time.Second
		cfg.sizes, cfg.growthOps = []int{1_000, 100_000}, 2000
	} else {
		cfg.ops, cfg.warmup, cfg.minDuration, cfg.maxDuration = 20_000, 2000, 400*time.Millisecond, 4*time.Second
		cfg.sizes, cfg.growthOps = []int{1_000, 100_000, 1_000_000}, 10_000
	}
	return cfg, nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit code once every server it
// started is stopped.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}

	// Ctrl-C cancels the measurement; the deferred closes then stop the
	// servers. A second Ctrl-C kills at once (the servers die with us on
	// Linux).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()

	log := newProgress(stderr)
	code := measureAll(ctx, cfg, stdout, log)
	if ctx.Err() != nil {
		log.printf("interrupted; servers stopped")
		return 130
	}
	return code
}

func measureAll(ctx context.Context, cfg config, stdout io.Writer, log *progress) int {
	runID, err := newRunID()
	if err != nil {
		fmt.Fprintln(log.w, "bench:", err)
		return 1
	}
	e, err := startEnv(ctx, cfg, runID, log)
	defer func() {
		if err := e.cleanRedis(context.WithoutCancel(ctx)); err != nil {
			log.printf("cleaning the keys of this run from your Redis: %v", err)
		}
		if err := e.close(); err != nil {
			log.printf("stopping servers: %v", err)
		}
	}()
	if err != nil {
		fmt.Fprintln(log.w, "bench:", err)
		return 1
	}
	for _, s := range e.skipped {
		log.printf("skipping %s", s)
	}

	r := &runner{env: e, log: log}
	rep := report{header: r.header()}
	failed := false
	for _, sec := range r.sections() {
		if !sec.enabled {
			continue
		}
		s, err := sec.run(ctx)
		if ctx.Err() != nil {
			return 1
		}
		if err != nil {
			log.printf("%s: %v", sec.name, err)
			failed = true
			continue
		}
		failed = failed || s.failed
		rep.sections = append(rep.sections, s)
	}

	rep.summary = r.recommendations()
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	// The report and the chart are always written: where -out and -svg say,
	// else in a new temporary folder, named on stderr.
	out, svg := cfg.out, cfg.svg
	if out == "" || svg == "" {
		dir, err := os.MkdirTemp("", "blocklist-bench-")
		if err != nil {
			log.printf("%v", err)
			return 1
		}
		if out == "" {
			out = filepath.Join(dir, "bench.md")
		}
		if svg == "" {
			svg = filepath.Join(dir, "bench.svg")
		}
		log.printf("writing to %s (-out and -svg choose where)", dir)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{out, []byte(md)}, {svg, r.chart()}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			log.printf("%v", err)
			failed = true
		} else {
			log.printf("wrote %s", f.path)
		}
	}
	if failed {
		return 1
	}
	return 0
}

// runner runs the sections of the report on one env.
type runner struct {
	env        *env
	log        *progress
	compared   []comparedPair // filled by the comparison, drawn by chart
	propagated []propagated   // filled by propagation, drawn by chart
}

// sectionRunner is one part of the report.
type sectionRunner struct {
	name    string
	enabled bool
	run     func(ctx context.Context) (section, error)
}

// sections lists the parts of the report in order. A new measurement (say,
// how long a revocation takes to reach another process's cache) is one more
// entry here and a method returning its section.
func (r *runner) sections() []sectionRunner {
	return []sectionRunner{
		{name: "comparison", enabled: true, run: r.comparison},
		{name: "growth", enabled: r.env.cfg.growth, run: r.growth},
		{name: "propagation", enabled: (r.env.redis != nil || r.env.cluster != nil) && r.env.cfg.wants("propagation"), run: r.propagation},
		{name: "replication", enabled: !r.env.cfg.noCluster && r.env.cfg.wants("replication"), run: r.replication},
	}
}

// header returns the lines that say where and how the numbers were made.
func (r *runner) header() []string {
	e := r.env
	mode := "full"
	if e.cfg.quick {
		mode = "quick (-quick)"
	}
	servers := []string{}
	for _, s := range []string{e.redisInfo, e.clusterInfo, e.memcacheInfo} {
		if s != "" {
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		servers = append(servers, "none")
	}
	if len(e.cfg.only) > 0 {
		mode += ", only rows matching " + strings.Join(e.cfg.only, ", ")
	}
	return []string{
		"Machine: " + machine() + ".",
		"Servers: " + strings.Join(servers, "; ") + ".",
		fmt.Sprintf("Run: %s mode, %s UTC. Per figure: a warm-up of at least %s operations (and every id once), "+
			"then at least %s timed operations and, for lookups, at least %s; each phase stops after %s.",
			mode, time.Now().UTC().Format("2006-01-02 15:04"), fmtCount(e.cfg.warmup), fmtCount(e.cfg.ops),
			fmtDur(e.cfg.minDuration), fmtDur(e.cfg.maxDuration)),
	}
}

func newRunID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// progress writes what the command is doing to stderr, with the time since
// it started.
type progress struct {
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

func (p *progress) printf(format string, args ...any) {
	fmt.Fprintf(p.w, "[%5.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}
