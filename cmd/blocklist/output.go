package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/jwtblocklist/blocklist"
	"github.com/jwtblocklist/blocklist/jwtguard"
)

// printer writes results, for people or (json) one JSON object per line.
type printer struct {
	w    io.Writer
	json bool
}

func (p *printer) emit(v map[string]any, human string, args ...any) error {
	if p.json {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return printError(err)
	}
	_, err := fmt.Fprintf(p.w, human+"\n", args...)
	return printError(err)
}

// idFields puts an id into a JSON object: as "jti", and, when it is not
// valid UTF-8 (which JSON cannot carry), also as "jti_base64", exactly.
func idFields(v map[string]any, id string) map[string]any {
	v["jti"] = id
	if !utf8.ValidString(id) {
		v["jti_base64"] = base64.StdEncoding.EncodeToString([]byte(id))
	}
	return v
}

func (p *printer) revocation(r revocation) error {
	v := idFields(map[string]any{}, r.JTI)
	if r.Session != "" {
		v["sid"] = r.Session
	}
	if r.Expired {
		v["revoked"] = false
		v["expired"] = true
		return p.emit(v, "%s: the token has expired; nothing to revoke", quoteID(r.JTI))
	}
	v["revoked"] = true
	v["until"] = timeText(r.Until)
	if r.Session != "" {
		return p.emit(v, "revoked %s until %s (session %s: revoke-session ends all of it)", quoteID(r.JTI), timeText(r.Until), quoteID(r.Session))
	}
	return p.emit(v, "revoked %s until %s", quoteID(r.JTI), timeText(r.Until))
}

func (p *printer) check(jti string, until time.Time) error {
	v := idFields(map[string]any{}, jti)
	v["revoked"] = !until.IsZero()
	if until.IsZero() {
		return p.emit(v, "%s: not revoked", quoteID(jti))
	}
	v["until"] = timeText(until)
	return p.emit(v, "%s: revoked until %s", quoteID(jti), timeText(until))
}

func (p *printer) listed(jti string, until time.Time) error {
	v := idFields(map[string]any{}, jti)
	kind := jwtguard.IDKind(jti)
	v["until"], v["kind"] = timeText(until), kind
	return p.emit(v, "%s\t%s\t%s", quoteID(jti), timeText(until), kind)
}

func (p *printer) count(n int) error {
	return p.emit(map[string]any{"count": n}, "%d", n)
}

func (p *printer) done(what, key, value string) error {
	return p.emit(map[string]any{key: value, "done": true}, "%s %s", what, quoteID(value))
}

func (p *printer) event(ev blocklist.Event, now time.Time) error {
	switch ev.Kind {
	case blocklist.Revoked:
		v := idFields(map[string]any{"event": "revoked"}, ev.JTI)
		v["until"] = timeText(ev.Exp)
		lag := ""
		if !ev.Announced.IsZero() {
			d := now.Sub(ev.Announced)
			v["announced"] = timeText(ev.Announced)
			v["lag_seconds"] = d.Seconds()
			lag = fmt.Sprintf(" (lag %v)", d.Round(time.Microsecond))
		}
		return p.emit(v, "%s revoked %s until %s%s", timeText(now), quoteID(ev.JTI), timeText(ev.Exp), lag)
	default:
		state := map[blocklist.EventKind]string{
			blocklist.Synced:  "synced: live; earlier revocations may not have been shown",
			blocklist.Lost:    "lost: cannot reach the store; retrying",
			blocklist.Resumed: "resumed: live again, nothing missed",
		}[ev.Kind]
		return p.emit(map[string]any{"event": lowerKind(ev.Kind)}, "%s %s", timeText(now), state)
	}
}

func lowerKind(k blocklist.EventKind) string {
	switch k {
	case blocklist.Synced:
		return "synced"
	case blocklist.Lost:
		return "lost"
	case blocklist.Resumed:
		return "resumed"
	case blocklist.Revoked:
		return "revoked"
	}
	return k.String()
}

func (p *printer) stats(st stats) error {
	if p.json {
		return p.emit(map[string]any{"revocations": st.Revocations, "by_kind": st.ByKind}, "")
	}
	kinds := make([]string, 0, len(st.ByKind))
	for k := range st.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if err := p.emit(nil, "revocations\t%d", st.Revocations); err != nil {
		return err
	}
	for _, k := range kinds {
		if err := p.emit(nil, "  %s\t%d", k, st.ByKind[k]); err != nil {
			return err
		}
	}
	return nil
}

func (p *printer) finding(f finding) error {
	status := "ok"
	if !f.OK {
		status = "PROBLEM"
	}
	return p.emit(map[string]any{"check": f.Check, "ok": f.OK, "detail": f.Detail}, "%s\t%s: %s", status, f.Check, f.Detail)
}
