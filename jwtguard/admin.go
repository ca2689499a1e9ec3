package jwtguard

import (
	"bytes"
	"container/heap"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/jwtblocklist/blocklist"
)

// Bounds of the admin handler's answers and requests.
const (
	// AdminDefaultLimit is the page size of GET /revocations without limit.
	AdminDefaultLimit = 100
	// AdminMaxLimit is the largest limit GET /revocations accepts.
	AdminMaxLimit = 1000
	// maxAdminBody bounds a JSON request body: a token, with room to spare.
	maxAdminBody = 64 << 10
)

// AdminRevocation is the JSON of one revocation in the admin handler's
// answers.
type AdminRevocation struct {
	// JTI is the revoked id. JSON strings hold only UTF-8: an id that is
	// not valid UTF-8 is also given exactly in JTIBase64.
	JTI       string `json:"jti"`
	JTIBase64 string `json:"jti_base64,omitempty"`
	// Revoked reports whether JTI is revoked now.
	Revoked bool `json:"revoked"`
	// Until is when the revocation ends (RFC 3339); absent when not revoked.
	Until *time.Time `json:"until,omitempty"`
	// Kind is IDKind(JTI), in lists.
	Kind string `json:"kind,omitempty"`
	// Expired reports that POST /revocations was given a token that had
	// already expired: nothing was stored.
	Expired bool `json:"expired,omitempty"`
	// Session is the sid claim of a token given to POST /revocations: its
	// session lives on unless revoked too.
	Session string `json:"sid,omitempty"`
}

// AdminPage is the JSON answer of GET /revocations.
type AdminPage struct {
	Revocations []AdminRevocation `json:"revocations"`
	// Next is the cursor of the next page, "" after the last.
	Next string `json:"next"`
}

// AdminStats is the JSON answer of GET /stats.
type AdminStats struct {
	// Revocations counts the live revocations, ByKind by IDKind. Both are
	// absent when the Store cannot list (is not a blocklist.ScanStore).
	Revocations *int           `json:"revocations,omitempty"`
	ByKind      map[string]int `json:"by_kind,omitempty"`
	// Sessions reports whether the Guard has sessions on.
	Sessions bool `json:"sessions"`
}

// AdminHandler returns an HTTP handler of JSON endpoints for operators,
// acting on the Guard's Store, relative to where it is mounted (mount it
// with http.StripPrefix, as in mux.Handle("/admin/",
// http.StripPrefix("/admin", g.AdminHandler()))):
//
//	POST /revocations                {"jti": ID, "exp": RFC3339} or {"token": TOKEN}
//	GET  /revocations/{jti}          {"jti", "revoked", "until"}; the id path-escaped
//	GET  /revocations?prefix=&limit=&cursor=  {"revocations": [...], "next": CURSOR}
//	POST /sessions/{sid}/revoke      RevokeSession; {"sid", "revoked": true}
//	POST /subjects/{sub}/logout-all  LogoutAll; {"sub", "logged_out": true}
//	GET  /stats                      AdminStats
//
// POST /revocations revokes the id until exp, or a raw token by its id
// (see ParseUnverified: the signature is not checked, since an operator
// revoking a leaked token may hold one signed by a retired key) until its
// exp plus MaxLeeway, and answers 200 with an AdminRevocation saying when
// the revocation ends. A page of GET /revocations lists live revocations
// whose id starts with prefix, in byte order of their ids, at most limit
// (AdminDefaultLimit, at most AdminMaxLimit); each page scans the whole
// Store, so its cost grows with the blocklist, and revocations made while
// paging may be missed if they sort before the cursor. It needs a
// blocklist.ScanStore. The session endpoints need WithSessions.
//
// A POST body must be application/json, at most 64 KiB, without unknown
// fields. Bad input (a malformed body, an invalid id, an exp not in the
// future, a malformed token, a Guard or Store that cannot do what is
// asked) gets 400 with {"error": TEXT}; a Store failure gets 503 with
// {"error": TEXT}. Answers carry Cache-Control: no-store.
//
// The handler authenticates nobody: anyone who reaches it can revoke any
// token and log any user out. Mount it only behind an admin credential of
// your own (the demo checks a random bearer token kept beside its key), on
// a path or listener that users never reach.
func (g *Guard) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /revocations", g.adminRevoke)
	mux.HandleFunc("GET /revocations/{jti}", g.adminCheck)
	mux.HandleFunc("GET /revocations", g.adminList)
	mux.HandleFunc("POST /sessions/{sid}/revoke", g.adminRevokeSession)
	mux.HandleFunc("POST /subjects/{sub}/logout-all", g.adminLogoutAll)
	mux.HandleFunc("GET /stats", g.adminStats)
	return mux
}

// adminError is an error the admin handler answers with its status.
type adminError struct {
	status int
	err    error
}

func (e *adminError) Error() string { return e.err.Error() }
func (e *adminError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &adminError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// storeFailed marks a Store failure: 503.
func storeFailed(err error) error {
	return &adminError{http.StatusServiceUnavailable, err}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// answer writes v, or the JSON error err calls for.
func (g *Guard) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, v)
		return
	}
	status := http.StatusServiceUnavailable
	var ae *adminError
	if errors.As(err, &ae) {
		status = ae.status
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func adminRevocation(jti string, until time.Time) AdminRevocation {
	a := AdminRevocation{JTI: jti, Revoked: !until.IsZero()}
	if !utf8.ValidString(jti) {
		a.JTIBase64 = base64.StdEncoding.EncodeToString([]byte(jti))
	}
	if a.Revoked {
		u := until.UTC()
		a.Until = &u
	}
	return a
}

// readJSON decodes the body of r into v, strictly.
func readJSON(r *http.Request, v any) error {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		return badRequest("Content-Type %q: want application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return badRequest("reading the body: %v", err)
	}
	if len(body) > maxAdminBody {
		return badRequest("body over %d bytes", maxAdminBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body: %v", err)
	}
	if dec.More() {
		return badRequest("body: more than one JSON value")
	}
	return nil
}

// expiryStore is the Store as an ExpiryStore, when it is one.
func (g *Guard) expiryStore() (blocklist.ExpiryStore, error) {
	s, ok := g.store.(blocklist.ExpiryStore)
	if !ok {
		return nil, badRequest("the store (%T) cannot tell when a revocation ends", g.store)
	}
	return s, nil
}

// revokeID revokes jti until exp and answers when its revocation ends.
func (g *Guard) revokeID(r *http.Request, jti string, exp time.Time) (AdminRevocation, error) {
	if err := g.store.Revoke(r.Context(), jti, exp); err != nil {
		g.obs.revoked(r.Context(), KindToken, err)
		return AdminRevocation{}, storeFailed(fmt.Errorf("jwtguard: revoking: %w", err))
	}
	g.obs.revoked(r.Context(), KindToken, nil)
	until := exp
	if s, ok := g.store.(blocklist.ExpiryStore); ok {
		// Revocation is monotonic: say when it really ends.
		u, err := s.RevokedUntil(r.Context(), jti)
		if err != nil {
			g.obs.storeFailure(r.Context(), "admin revoke", err)
			return AdminRevocation{}, storeFailed(fmt.Errorf("jwtguard: reading the revocation back: %w", err))
		}
		until = u
	}
	return adminRevocation(jti, until), nil
}

func (g *Guard) adminRevoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JTI   *string `json:"jti"`
		Exp   *string `json:"exp"`
		Token *string `json:"token"`
	}
	v, err := func() (AdminRevocation, error) {
		if err := readJSON(r, &req); err != nil {
			return AdminRevocation{}, err
		}
		switch {
		case req.Token != nil && (req.JTI != nil || req.Exp != nil):
			return AdminRevocation{}, badRequest(`give {"token"} or {"jti", "exp"}, not both`)
		case req.Token != nil:
			t, err := ParseUnverified(*req.Token)
			if err != nil {
				return AdminRevocation{}, badRequest("%v", err)
			}
			sid, _ := t.Claims[ClaimSessionID].(string)
			exp := t.ExpiresAt.Add(MaxLeeway) // as Revoke: whatever any Guard's leeway
			if !exp.After(g.obs.now()) {
				return AdminRevocation{JTI: t.ID, Expired: true, Session: sid}, nil
			}
			a, err := g.revokeID(r, t.ID, exp)
			a.Session = sid
			return a, err
		case req.JTI == nil || req.Exp == nil:
			return AdminRevocation{}, badRequest(`give {"jti", "exp"} or {"token"}`)
		}
		if err := blocklist.ValidateID(*req.JTI); err != nil {
			return AdminRevocation{}, badRequest("jti: %v", err)
		}
		exp, err := time.Parse(time.RFC3339, *req.Exp)
		if err != nil {
			return AdminRevocation{}, badRequest("exp %q: want RFC 3339", *req.Exp)
		}
		if !exp.After(g.obs.now()) {
			return AdminRevocation{}, badRequest("exp %s is not in the future: nothing to revoke", *req.Exp)
		}
		return g.revokeID(r, *req.JTI, exp)
	}()
	g.answer(w, r, v, err)
}

func (g *Guard) adminCheck(w http.ResponseWriter, r *http.Request) {
	jti := r.PathValue("jti")
	v, err := func() (AdminRevocation, error) {
		if err := blocklist.ValidateID(jti); err != nil {
			return AdminRevocation{}, badRequest("jti: %v", err)
		}
		s, err := g.expiryStore()
		if err != nil {
			return AdminRevocation{}, err
		}
		until, err := s.RevokedUntil(r.Context(), jti)
		if err != nil {
			g.obs.storeFailure(r.Context(), "admin check", err)
			return AdminRevocation{}, storeFailed(fmt.Errorf("jwtguard: checking the blocklist: %w", err))
		}
		return adminRevocation(jti, until), nil
	}()
	g.answer(w, r, v, err)
}

func (g *Guard) adminList(w http.ResponseWriter, r *http.Request) {
	v, err := func() (AdminPage, error) {
		q := r.URL.Query()
		for name := range q {
			if name != "prefix" && name != "limit" && name != "cursor" {
				return AdminPage{}, badRequest("unknown parameter %q", name)
			}
		}
		limit := AdminDefaultLimit
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > AdminMaxLimit {
				return AdminPage{}, badRequest("limit %q: want 1 to %d", s, AdminMaxLimit)
			}
			limit = n
		}
		var after string
		hasCursor := false
		if c := q.Get("cursor"); c != "" {
			b, err := base64.RawURLEncoding.DecodeString(c)
			if err != nil || blocklist.ValidateID(string(b)) != nil {
				return AdminPage{}, badRequest("cursor %q: not one this handler gave", c)
			}
			after, hasCursor = string(b), true
		}
		scan, ok := g.store.(blocklist.ScanStore)
		if !ok {
			return AdminPage{}, badRequest("the store (%T) cannot list its revocations", g.store)
		}
		prefix := q.Get("prefix")
		page, more, err := scanPage(r, scan, prefix, after, hasCursor, limit)
		if err != nil {
			g.obs.storeFailure(r.Context(), "admin list", err)
			return AdminPage{}, storeFailed(fmt.Errorf("jwtguard: listing the blocklist: %w", err))
		}
		p := AdminPage{Revocations: make([]AdminRevocation, len(page))}
		for i, e := range page {
			p.Revocations[i] = adminRevocation(e.jti, e.until)
			p.Revocations[i].Kind = IDKind(e.jti)
		}
		if more {
			p.Next = base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1].jti))
		}
		return p, nil
	}()
	g.answer(w, r, v, err)
}

type listed struct {
	jti   string
	until time.Time
}

// largest is a max-heap of ids: the page kept while scanning.
type largest []listed

func (h largest) Len() int           { return len(h) }
func (h largest) Less(i, j int) bool { return h[i].jti > h[j].jti }
func (h largest) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *largest) Push(x any)        { *h = append(*h, x.(listed)) }
func (h *largest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// scanPage returns the limit smallest ids starting with prefix and sorting
// after after (when hasCursor), in order, and whether more follow.
func scanPage(r *http.Request, scan blocklist.ScanStore, prefix, after string, hasCursor bool, limit int) ([]listed, bool, error) {
	h := make(largest, 0, limit+2)
	kept := make(map[string]struct{}, limit+2)
	err := scan.ScanRevoked(r.Context(), func(jti string, until time.Time) error {
		if len(jti) < len(prefix) || jti[:len(prefix)] != prefix || hasCursor && jti <= after {
			return nil
		}
		if _, dup := kept[jti]; dup { // a scan may report an id twice
			return nil
		}
		if len(h) > limit && jti > h[0].jti {
			return nil // after every id of a full page
		}
		heap.Push(&h, listed{jti, until})
		kept[jti] = struct{}{}
		if len(h) > limit+1 {
			delete(kept, heap.Pop(&h).(listed).jti)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	more := len(h) > limit
	if more {
		heap.Pop(&h)
	}
	page := make([]listed, len(h))
	for i := len(page) - 1; i >= 0; i-- {
		page[i] = heap.Pop(&h).(listed)
	}
	return page, more, nil
}

func (g *Guard) adminRevokeSession(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("sid")
	v, err := func() (any, error) {
		if g.sess == nil {
			return nil, badRequest("sessions are off in this Guard (WithSessions)")
		}
		if sid == "" {
			return nil, badRequest("empty session id")
		}
		if err := g.RevokeSession(r.Context(), sid); err != nil {
			return nil, storeFailed(err)
		}
		return map[string]any{"sid": sid, "revoked": true}, nil
	}()
	g.answer(w, r, v, err)
}

func (g *Guard) adminLogoutAll(w http.ResponseWriter, r *http.Request) {
	sub := r.PathValue("sub")
	v, err := func() (any, error) {
		if g.sess == nil {
			return nil, badRequest("sessions are off in this Guard (WithSessions)")
		}
		if sub == "" {
			return nil, badRequest("empty subject")
		}
		if err := g.LogoutAll(r.Context(), sub); err != nil {
			return nil, storeFailed(err)
		}
		return map[string]any{"sub": sub, "logged_out": true}, nil
	}()
	g.answer(w, r, v, err)
}

func (g *Guard) adminStats(w http.ResponseWriter, r *http.Request) {
	v, err := func() (AdminStats, error) {
		st := AdminStats{Sessions: g.sess != nil}
		scan, ok := g.store.(blocklist.ScanStore)
		if !ok {
			return st, nil
		}
		n := 0
		st.ByKind = map[string]int{KindToken: 0, KindSignature: 0, KindSession: 0, KindSubject: 0, KindExchange: 0}
		seen := map[string]struct{}{}
		err := scan.ScanRevoked(r.Context(), func(jti string, _ time.Time) error {
			if _, dup := seen[jti]; dup {
				return nil
			}
			seen[jti] = struct{}{}
			n++
			st.ByKind[IDKind(jti)]++
			return nil
		})
		if err != nil {
			g.obs.storeFailure(r.Context(), "admin stats", err)
			return AdminStats{}, storeFailed(fmt.Errorf("jwtguard: counting the blocklist: %w", err))
		}
		st.Revocations = &n
		return st, nil
	}()
	g.answer(w, r, v, err)
}
