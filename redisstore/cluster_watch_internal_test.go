package redisstore

import (
	"strings"
	"testing"

	"github.com/jwtblocklist/blocklist"
)

// TestClusterWatchMerge feeds the merge of a Cluster watch the events of
// three streams' watches and checks what its subscriber is told.
func TestClusterWatchMerge(t *testing.T) {
	t.Parallel()
	type in struct {
		stream int
		kind   blocklist.EventKind
		jti    string
	}
	S, L, R, V := blocklist.Synced, blocklist.Lost, blocklist.Resumed, blocklist.Revoked
	for _, c := range []struct {
		name string
		in   []in
		want string
	}{
		{"Synced once every stream is; nothing passed on before",
			[]in{{0, S, ""}, {0, V, "a"}, {1, S, ""}, {2, S, ""}, {1, V, "b"}},
			"Synced Revoked:b"},
		{"Lost once, Revoked from live streams meanwhile, Resumed when every lost stream resumed",
			[]in{{0, S, ""}, {1, S, ""}, {2, S, ""}, {1, L, ""}, {0, V, "a"}, {2, L, ""}, {1, R, ""}, {1, V, "b"}, {2, R, ""}},
			"Synced Lost Revoked:a Revoked:b Resumed"},
		{"a lost stream that starts over makes it Synced",
			[]in{{0, S, ""}, {1, S, ""}, {2, S, ""}, {1, L, ""}, {2, L, ""}, {1, R, ""}, {2, S, ""}},
			"Synced Lost Synced"},
		{"a stream's gap while all are live is a Synced",
			[]in{{0, S, ""}, {1, S, ""}, {2, S, ""}, {0, V, "a"}, {2, S, ""}, {1, V, "b"}},
			"Synced Revoked:a Synced Revoked:b"},
		{"Lost first when a stream cannot be reached at the start",
			[]in{{0, S, ""}, {1, L, ""}, {0, V, "a"}, {2, S, ""}, {1, S, ""}},
			"Lost Revoked:a Synced"},
		{"a stream lost again before the others resumed: still one Lost",
			[]in{{0, S, ""}, {1, S, ""}, {2, S, ""}, {0, L, ""}, {1, L, ""}, {0, R, ""}, {0, L, ""}, {0, R, ""}, {1, R, ""}},
			"Synced Lost Resumed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			a := &clusterWatch{fn: func(ev blocklist.Event) {
				s := ev.Kind.String()
				if ev.Kind == blocklist.Revoked {
					s += ":" + ev.JTI
				}
				got = append(got, s)
			}}
			a.start(3)
			for _, e := range c.in {
				a.handle(e.stream, blocklist.Event{Kind: e.kind, JTI: e.jti})
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Errorf("got %q, want %q", g, c.want)
			}
		})
	}

	// A new set of streams (resharding): Lost, then Synced once the new
	// set is live, even if every new stream would resume.
	var got []string
	a := &clusterWatch{fn: func(ev blocklist.Event) { got = append(got, ev.Kind.String()) }}
	a.start(2)
	a.handle(0, blocklist.Event{Kind: S})
	a.handle(1, blocklist.Event{Kind: S})
	a.lose()
	a.start(3)
	for i := range 3 {
		a.handle(i, blocklist.Event{Kind: R})
	}
	if g := strings.Join(got, " "); g != "Synced Lost Synced" {
		t.Errorf("new set of streams: got %q, want %q", g, "Synced Lost Synced")
	}
}
