package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/testserver"
)

// tinyConfig measures in milliseconds: the tests check the shape of the
// report, not the numbers.
func tinyConfig(only ...string) config {
	return config{
		ops: 50, warmup: 10, minDuration: 0, maxDuration: time.Second,
		keys: 20, lifetime: time.Minute,
		sizes: []int{10, 200}, growthOps: 50,
		only: only,
	}
}

func tinyRunner(t *testing.T, cfg config) *runner {
	t.Helper()
	return &runner{env: &env{cfg: cfg, runID: "test"}, log: newProgress(io.Discard)}
}

// cells splits a Markdown table row into its trimmed cells.
func cells(line string) []string {
	parts := strings.Split(strings.Trim(line, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func TestComparisonTableHasEveryColumn(t *testing.T) {
	r := tinyRunner(t, tinyConfig("memorystore"))
	sec, err := r.comparison(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if sec.failed {
		t.Fatalf("comparison failed: %+v", sec.table.rows)
	}
	lines := strings.Split(strings.TrimSpace(sec.table.markdown()), "\n")
	if len(lines) != 4 {
		t.Fatalf("table has %d lines, want header, rule, store row, raw row:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	header := cells(lines[0])
	for _, col := range []string{"backend", "revoked p50", "revoked p99", "unrevoked p50", "unrevoked p99",
		"Revoke p50", "Revoke p99", "parallel", "allocs/op", "vs raw (p50)", "ops timed"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header lacks column %q: %s", col, lines[0])
		}
	}
	store, raw := cells(lines[2]), cells(lines[3])
	if store[0] != "memorystore" || !strings.HasPrefix(raw[0], "↳ raw: map") {
		t.Errorf("rows are %q and %q, want memorystore and its raw map", store[0], raw[0])
	}
	for _, row := range [][]string{store, raw} {
		if len(row) != len(header) {
			t.Fatalf("row %q has %d cells, header %d", row[0], len(row), len(header))
		}
		for i, c := range row {
			if c == "" {
				t.Errorf("row %q: column %q is empty", row[0], header[i])
			}
		}
		if n := strings.Count(row[len(row)-1], "·"); n != 3 {
			t.Errorf("row %q: ops timed %q, want four counts", row[0], row[len(row)-1])
		}
	}
	if n := strings.Count(store[9], "×"); n != 3 {
		t.Errorf("vs raw = %q, want three ratios", store[9])
	}
	if !strings.HasSuffix(store[1], "ns") && !strings.HasSuffix(store[1], "µs") {
		t.Errorf("revoked p50 = %q, want a duration", store[1])
	}
	if !strings.HasSuffix(store[7], "/s") {
		t.Errorf("parallel = %q, want a rate", store[7])
	}
}

func TestGrowthSection(t *testing.T) {
	r := tinyRunner(t, tinyConfig("memorystore", "boltstore"))
	r.env.cfg.boltDir = t.TempDir()
	sec, err := r.growth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	md := sec.table.markdown()
	if sec.failed || strings.Contains(md, "failed") {
		t.Fatalf("growth failed:\n%s", md)
	}
	lines := strings.Split(strings.TrimSpace(md), "\n")
	if len(lines) != 2+4 {
		t.Fatalf("growth table:\n%s\nwant a revoked and an unrevoked row per backend", md)
	}
	if h := lines[0]; !strings.Contains(h, "10 p50 · p99") || !strings.Contains(h, "200 p50 · p99") {
		t.Errorf("header %q lacks a column per size", h)
	}
	for _, l := range lines[2:] {
		for i, c := range cells(l)[2:4] {
			if !strings.Contains(c, " · ") {
				t.Errorf("row %q: size column %d is %q, want p50 · p99", l, i, c)
			}
		}
	}
}

func TestChartIsWellFormedSVG(t *testing.T) {
	r := tinyRunner(t, tinyConfig("memorystore"))
	if _, err := r.comparison(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.compared = append(r.compared, comparedPair{name: "broken", err: errors.New("down")})
	props := []propagated{{name: "redisstore", mode: "replica", p50: 300 * time.Microsecond, p99: 2 * time.Millisecond}}
	svg := drawChart(r.compared, props, "test machine <&>", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC))
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"<svg", "memorystore", "raw: map + RWMutex", "test machine &lt;&amp;&gt;", "2030-01-02",
		"IsRevoked latency", "Revoke latency", "Propagation", "B in replica mode"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if bytes.Contains(svg, []byte("broken")) {
		t.Error("chart draws a pair that could not be measured")
	}
}

// TestRunWritesReport runs the command end to end on memorystore alone, so
// that it starts no server.
func TestRunWritesReport(t *testing.T) {
	dir := t.TempDir()
	md, svg := filepath.Join(dir, "bench.md"), filepath.Join(dir, "bench.svg")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-quick", "-only", "memorystore", "-growth=false", "-out", md, "-svg", svg}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	out, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, stdout.Bytes()) {
		t.Error("-out differs from what was printed")
	}
	for _, want := range []string{"# blocklist benchmark", "Machine: ", "go1.", "quick", "| memorystore ", "↳ raw: map"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "memorystore: measuring") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("-svg wrote %.40q, %v", b, err)
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "-redis-addr", "h:1", "-redis-cluster-addrs", "a:1,b:2", "-only", "memorystore,cluster"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.redisAddr != "h:1" || len(cfg.clusterAddrs) != 2 || len(cfg.sizes) != 2 || cfg.maxDuration != time.Second {
		t.Errorf("parsed %+v", cfg)
	}
	if !cfg.wants("memorystore") || !cfg.wants("cached → redisstore (cluster)") || cfg.wants("boltstore") {
		t.Error("-only selects the wrong rows")
	}
	full, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := full.sizes[len(full.sizes)-1]; got != 1_000_000 {
		t.Errorf("full run grows to %d entries, want 1M", got)
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("a stray argument was accepted")
	}
}

func TestFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{
		38: "38 ns", 1210: "1.21 µs", 24_600: "24.6 µs", 10_400_000: "10.4 ms", 999: "999 ns",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", d, got, want)
		}
	}
	for e, want := range map[int]string{1: "10 ns", 3: "1 µs", 5: "100 µs", 7: "10 ms"} {
		if got := decade(e); got != want {
			t.Errorf("decade(%d) = %q, want %q", e, got, want)
		}
	}
	if got := fmtRatio(105, 100); got != "×1.05" {
		t.Errorf("fmtRatio = %q", got)
	}
	if got := fmtAllocs(0.01); got != "0" {
		t.Errorf("fmtAllocs(0.01) = %q", got)
	}
}

// TestMissingServersAreSkipped runs with no server binary in PATH: the
// networked rows are skipped with a note saying what to install.
func TestMissingServersAreSkipped(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	e, err := startEnv(t.Context(), tinyConfig(), "test", newProgress(io.Discard))
	defer e.close()
	if err != nil {
		t.Fatal(err)
	}
	if e.redis != nil || e.cluster != nil || e.memcache != nil {
		t.Fatal("a client was made without a server")
	}
	notes := strings.Join(e.skipped, "\n")
	for _, want := range []string{"redisstore:", "redisstore (cluster):", "memcachestore:", "-redis-addr", "-memcached-addr"} {
		if !strings.Contains(notes, want) {
			t.Errorf("skip notes lack %q:\n%s", want, notes)
		}
	}
	r := &runner{env: e, log: newProgress(io.Discard)}
	for _, m := range r.pairMakers(t.TempDir()) {
		if m.name != "memorystore" && m.name != "boltstore" {
			t.Errorf("row %q offered without its server", m.name)
		}
	}
}

// TestUsersRedisIsCleaned measures against a Redis given with -redis-addr
// and checks that the run deletes every key it wrote there.
func TestUsersRedisIsCleaned(t *testing.T) {
	srv := testserver.Redis(t)
	cfg := tinyConfig("redisstore")
	cfg.redisAddr, cfg.noCluster = srv.Addr(), true
	e, err := startEnv(t.Context(), cfg, "test", newProgress(io.Discard))
	defer e.close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.redisInfo, "yours at "+srv.Addr()) {
		t.Errorf("header says %q, want it to name the user's server", e.redisInfo)
	}
	r := &runner{env: e, log: newProgress(io.Discard)}
	sec, err := r.comparison(t.Context())
	if err != nil || sec.failed {
		t.Fatalf("comparison: %v\n%s", err, sec.table.markdown())
	}
	if len(r.compared) != 2 { // redisstore and cached → redisstore
		t.Errorf("measured %d rows, want 2", len(r.compared))
	}
	if n, err := e.redis.DBSize(t.Context()).Result(); err != nil || n == 0 {
		t.Fatalf("DBSIZE = %d, %v before cleaning; want the run's keys", n, err)
	}
	if err := e.cleanRedis(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := e.redis.DBSize(t.Context()).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE = %d, %v after cleaning; want 0", n, err)
	}
}
