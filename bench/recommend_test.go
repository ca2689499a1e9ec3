package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jwtblocklist/blocklist/internal/measure"
)

func TestRecommendations(t *testing.T) {
	r := tinyRunner(t, tinyConfig())
	lat := func(d time.Duration) measure.Latency { return measure.Latency{P50: d, P99: 2 * d} }
	res := func(lookup, revoke time.Duration) measure.Result {
		return measure.Result{Revoked: lat(lookup), Unrevoked: lat(lookup), Revoke: lat(revoke)}
	}
	r.compared = []comparedPair{
		{name: "memorystore", store: res(90*time.Nanosecond, 150*time.Nanosecond), raw: res(88*time.Nanosecond, 50*time.Nanosecond)},
		{name: "boltstore", store: res(560*time.Nanosecond, 11*time.Millisecond), raw: res(570*time.Nanosecond, 11*time.Millisecond)},
	}
	got := strings.Join(r.recommendations(), "\n")
	for _, want := range []string{"**One process**", "`memorystore`: IsRevoked 90 ns p50 (180 ns p99)", "×1.02 of the bare map",
		"**One machine, durable**", "`boltstore`: IsRevoked 560 ns p50", "Revoke 11 ms p50", "×6.22 memorystore's",
		"**A fleet**", "not measured in this run"} {
		if !strings.Contains(got, want) {
			t.Errorf("recommendations lack %q:\n%s", want, got)
		}
	}

	r.compared = append(r.compared,
		comparedPair{name: "redisstore", store: res(40*time.Microsecond, 45*time.Microsecond)},
		comparedPair{name: "cached → redisstore", store: res(130*time.Nanosecond, 50*time.Microsecond)},
		comparedPair{name: "cached → memcachestore", store: res(120*time.Nanosecond, 40*time.Microsecond)})
	r.propagated = []propagated{{name: "redisstore", mode: "cache", p50: 200 * time.Microsecond, p99: 900 * time.Microsecond}}
	got = strings.Join(r.recommendations(), "\n")
	for _, want := range []string{"`cached` over `redisstore`: 130 ns from the cache against 40.0 µs", "200 µs p50, 900 µs p99",
		"`cached` over `memcachestore` looks up in 120 ns but is told of no revocation"} {
		if !strings.Contains(got, want) {
			t.Errorf("fleet recommendation lacks %q:\n%s", want, got)
		}
	}
}

// Without -out and -svg, the report and the chart go to a new temporary
// folder that stderr names; the report opens with the recommendations.
func TestRunWritesToTemporaryFolder(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-quick", "-only", "memorystore", "-growth=false"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr.String())
	}
	m := regexp.MustCompile(`writing to (\S+) `).FindStringSubmatch(stderr.String())
	if m == nil || !strings.HasPrefix(m[1], tmp) {
		t.Fatalf("stderr names no folder under %s:\n%s", tmp, stderr.String())
	}
	md, err := os.ReadFile(filepath.Join(m[1], "bench.md"))
	if err != nil || !bytes.Equal(md, stdout.Bytes()) {
		t.Errorf("bench.md: %v, or it differs from stdout", err)
	}
	if svg, err := os.ReadFile(filepath.Join(m[1], "bench.svg")); err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Errorf("bench.svg: %.40q, %v", svg, err)
	}
	which, every := bytes.Index(md, []byte("## Which backend")), bytes.Index(md, []byte("## Every backend"))
	if which < 0 || every < 0 || which > every {
		t.Errorf("the report does not open with the recommendations:\n%s", md)
	}
}
